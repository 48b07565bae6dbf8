"""Helpers for scripts/bench-footprint.sh (plain asyncio, no packages).

upstream PORT SECS   an OpenAI-compatible upstream whose streamed answers trickle one chunk per
                     second for SECS seconds, then a usage chunk and [DONE]
clients PORT KEY N   N concurrent streaming chats through llmage; prints how many completed
"""

import asyncio
import json
import sys


async def upstream(port: int, secs: int) -> None:
    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")

            def chunk(data: str) -> bytes:
                body = f"data: {data}\n\n".encode()
                return f"{len(body):x}\r\n".encode() + body + b"\r\n"

            for i in range(secs):
                delta = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "slow-model",
                         "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]}
                writer.write(chunk(json.dumps(delta)))
                await writer.drain()
                await asyncio.sleep(1)
            usage = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "slow-model",
                     "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": secs,
                                              "total_tokens": 5 + secs}}
            writer.write(chunk(json.dumps(usage)) + chunk("[DONE]") + b"0\r\n\r\n")
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def one_client(port: int, key: str) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"model": "slow-model", "prompt": "hi", "stream": True}).encode()
    writer.write(b"POST /llmage/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                 b"authorization: Bearer " + key.encode() + b"\r\ncontent-type: application/json\r\n"
                 b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
    await writer.drain()
    data = await reader.read(-1)
    writer.close()
    return b"[DONE]" in data


async def clients(port: int, key: str, n: int) -> None:
    results = await asyncio.gather(*(one_client(port, key) for _ in range(n)), return_exceptions=True)
    done = sum(1 for r in results if r is True)
    print(f"{done}/{n} streams completed")


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        asyncio.run(upstream(int(sys.argv[2]), int(sys.argv[3])))
    else:
        asyncio.run(clients(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
