// Go anchor for bench/bench_tasks.c (run with GOMAXPROCS=1):
//   yield     runtime.Gosched ping-pong between two goroutines, ns per Gosched
//   spawn     go f() + sync.WaitGroup per empty goroutine, ns each
//   sleepers  100,000 goroutines sleeping 1 s: wall time, CPU time (user +
//             system, all threads) and peak RSS per goroutine (VmHWM growth
//             / 100,000), in a fresh child process
// Output: "result <name> <value>" lines, as bench_tasks prints them.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	yieldsPerG = 2000000
	spawns     = 300000
	sleepers   = 100000
)

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func benchYield() float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < yieldsPerG; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / (2 * yieldsPerG)
}

func benchSpawn() float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < spawns; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	return float64(time.Since(start).Nanoseconds()) / spawns
}

func statusKB(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			v, _ := strconv.ParseInt(fields[0], 10, 64)
			return v
		}
	}
	return -1
}

// cpuSeconds: user + system time of the whole process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) +
		float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func sleepersChild() {
	hwm0 := statusKB("VmHWM")
	var wg sync.WaitGroup
	cpu0 := cpuSeconds()
	start := time.Now()
	wg.Add(sleepers)
	for i := 0; i < sleepers; i++ {
		go func() {
			time.Sleep(time.Second)
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	hwm1 := statusKB("VmHWM")
	fmt.Printf("result sleepers_wall_s %.4f\n", wall)
	fmt.Printf("result sleepers_cpu_s %.4f\n", cpu)
	fmt.Printf("result sleepers_rss_per_task_bytes %.0f\n",
		float64(hwm1-hwm0)*1024/sleepers)
}

func sleepersInChild() (float64, float64, float64) {
	out, err := exec.Command("/proc/self/exe", "sleepers-child").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go anchor: sleepers child:", err)
		os.Exit(1)
	}
	var wall, rss, cpu float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "result" {
			v, _ := strconv.ParseFloat(f[2], 64)
			switch f[1] {
			case "sleepers_wall_s":
				wall = v
			case "sleepers_rss_per_task_bytes":
				rss = v
			case "sleepers_cpu_s":
				cpu = v
			}
		}
		fmt.Println("# child:", line)
	}
	return wall, rss, cpu
}

func repeat(name string, runs int, f func() float64) {
	v := make([]float64, runs)
	for i := range v {
		v[i] = f()
		fmt.Printf("# %s run %d: %.2f ns\n", name, i+1, v[i])
	}
	fmt.Printf("result %s %.2f\n", name, median(v))
}

func main() {
	mode := "all"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	runs := 7
	if len(os.Args) > 2 {
		if n, err := strconv.Atoi(os.Args[2]); err == nil && n > 0 {
			runs = n
		}
	}
	if mode == "sleepers-child" {
		sleepersChild()
		return
	}
	all := mode == "all"
	if all || mode == "yield" {
		repeat("yield_ns", runs, benchYield)
	}
	if all || mode == "spawn" {
		repeat("spawn_await_ns", runs, benchSpawn)
	}
	if all || mode == "sleepers" {
		n := 3
		if runs < n {
			n = runs
		}
		walls := make([]float64, n)
		rss := make([]float64, n)
		cpus := make([]float64, n)
		for i := 0; i < n; i++ {
			walls[i], rss[i], cpus[i] = sleepersInChild()
		}
		fmt.Printf("result sleepers_wall_s %.4f\n", median(walls))
		fmt.Printf("result sleepers_rss_per_task_bytes %.0f\n", median(rss))
		fmt.Printf("result sleepers_cpu_s %.4f\n", median(cpus))
	}
}
