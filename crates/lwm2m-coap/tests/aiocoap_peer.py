"""A small aiocoap server used as a real peer by tests/interop_aiocoap.rs (and its observer by
crates/lwm2m-dtls/tests/coaps_interop.rs, over DTLS).

Usage: python3 aiocoap_peer.py serve HOST PORT
       python3 aiocoap_peer.py observe URI COUNT [CREDENTIALS_JSON]

"serve" runs a server with these resources:

  /hello   GET -> "hello from aiocoap"
  /store   GET (404 until written), PUT (2.01 created / 2.04 changed), POST (appends, 2.04),
           DELETE (2.02), FETCH (2.05 "fetched:" + request payload)
  /obs     observable: each GET/Observe registration is answered "n0", then three notifications
           "n1", "n2", "n3" follow, 50 ms apart
  /large   GET -> 3000 bytes ("0123456789" repeated); aiocoap serves it block-wise
  /upload  PUT (block-wise reassembled by aiocoap) -> 2.04 with payload "<length> <checksum>" (see checksum())
and prints "ready" on stdout once the socket is bound.

"observe" registers an observation with the aiocoap library, prints the payload of the first response and of
COUNT notifications, one per line, then cancels and exits (aiocoap-client 0.4.17 does not print
notifications: chrysn/aiocoap#395). With CREDENTIALS_JSON, the client credentials (e.g. a DTLS PSK) are
loaded from that file first.
"""

import asyncio
import json
import sys

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code

LARGE = b"0123456789" * 300


class Hello(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=b"hello from aiocoap")


class Store(resource.Resource):
    def __init__(self):
        super().__init__()
        self.value = None

    async def render_get(self, request):
        if self.value is None:
            return aiocoap.Message(code=Code.NOT_FOUND)
        return aiocoap.Message(payload=self.value)

    async def render_put(self, request):
        created = self.value is None
        self.value = request.payload
        return aiocoap.Message(code=Code.CREATED if created else Code.CHANGED)

    async def render_post(self, request):
        self.value = (self.value or b"") + request.payload
        return aiocoap.Message(code=Code.CHANGED, payload=self.value)

    async def render_delete(self, request):
        self.value = None
        return aiocoap.Message(code=Code.DELETED)

    async def render_fetch(self, request):
        return aiocoap.Message(payload=b"fetched:" + request.payload)


class Obs(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.task = None

    async def add_observation(self, request, serverobservation):
        await super().add_observation(request, serverobservation)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.tick())

    async def tick(self):
        for _ in range(3):
            await asyncio.sleep(0.05)
            self.n += 1
            self.updated_state()
        self.task = None

    async def render_get(self, request):
        return aiocoap.Message(payload=b"n%d" % self.n)


class Large(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=LARGE)


def checksum(data):
    """Order-sensitive: sum of (index + 1) * byte, modulo 2**32."""
    return sum((i + 1) * b for i, b in enumerate(data)) & 0xFFFFFFFF


class Upload(resource.Resource):
    async def render_put(self, request):
        return aiocoap.Message(code=Code.CHANGED, payload=b"%d %d" % (len(request.payload), checksum(request.payload)))


async def observe(uri, count, creds=None):
    ctx = await aiocoap.Context.create_client_context()
    if creds is not None:
        with open(creds) as f:
            ctx.client_credentials.load_from_dict(json.load(f))
    req = ctx.request(aiocoap.Message(code=Code.GET, uri=uri, observe=0))
    first = await req.response
    print(first.payload.decode(), flush=True)
    seen = 0
    async for note in req.observation:
        print(note.payload.decode(), flush=True)
        seen += 1
        if seen >= count:
            req.observation.cancel()
            break
    await ctx.shutdown()


async def serve(host, port):
    root = resource.Site()
    root.add_resource(["hello"], Hello())
    root.add_resource(["store"], Store())
    root.add_resource(["obs"], Obs())
    root.add_resource(["large"], Large())
    root.add_resource(["upload"], Upload())
    await aiocoap.Context.create_server_context(root, bind=(host, port))
    print("ready", flush=True)
    await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
    elif sys.argv[1] == "observe":
        asyncio.run(observe(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None))
    else:
        sys.exit("usage: aiocoap_peer.py serve HOST PORT | observe URI COUNT [CREDENTIALS_JSON]")
