// tls_echo: the Go crypto/tls anchor of bench/run_tls.sh.  An echo server
// (a goroutine per connection copying what it reads back), TLS 1.3 only,
// with the same certificate and key as the libasync server.
//
//	go build -o tls_echo tls_echo.go
//	tls_echo --port 0 --cert cert.pem --key key.pem
//
// Prints "listening on 127.0.0.1:PORT" once it accepts.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", 7000, "TCP port (0: any free one)")
	certFile := flag.String("cert", "cert.pem", "PEM certificate chain")
	keyFile := flag.String("key", "key.pem", "PEM private key")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS13}
	ln, err := tls.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port), cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
