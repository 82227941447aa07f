"""tls_echo.py: the asyncio anchor of bench/run_tls.sh: asyncio's stream
echo server (read + write + drain) with ssl=, TLS 1.3 only.

    python3 tls_echo.py PORT CERT KEY

Prints "listening on 127.0.0.1:PORT" once it accepts.
"""
import asyncio
import ssl
import sys


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(echo, "127.0.0.1", port, ssl=ctx)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
