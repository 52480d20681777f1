"""One receive buffer per thread, which the transports of that thread's connections read into.

For a plain ``asyncio.Protocol`` the transport reads each chunk into a new ``bytes`` of up
to 256 KiB. CPython takes a block that size from malloc above its mmap threshold, so every
read cost an mmap, an mremap to shrink it, a munmap and a page fault: 12% of the server's
CPU in the handshake profile, and the same on every echo read. A ``BufferedProtocol`` has
the transport ``recv_into`` a buffer the protocol gives instead. The protocols here take
what arrived out of it before their callback returns, and an event loop runs one callback
at a time, so a single buffer serves every connection of a thread.

A WebSocket connection holds the buffer as a ``ReceiveBuffer``, its ``get_buffer``: uvloop
keeps a protocol's bound ``get_buffer`` method for as long as the protocol is the
transport's, 64 bytes for every open connection, where one ``ReceiveBuffer`` per thread
serves them all.
"""

from __future__ import annotations

import threading

from .speedups import choose

#: asyncio's own read size for a plain ``Protocol``: as much per read as before.
READ_BUFFER_SIZE = 256 * 1024

_local = threading.local()


def read_buffer() -> memoryview:
    """This thread's receive buffer. Its contents are valid only until the
    ``buffer_updated`` call that reports them returns."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(READ_BUFFER_SIZE))
    return view


class ReceiveBuffer:
    """A protocol's ``get_buffer`` as an object: called with any size hint, it gives
    ``view``, the buffer the transport reads into."""

    __slots__ = ("view",)

    def __init__(self, view: memoryview) -> None:
        self.view = view

    def __call__(self, sizehint: int) -> memoryview:
        return self.view


#: ``ReceiveBuffer`` compiled (``rfc6455._speedups``) where it is built: called from C, it
#: runs no Python frame per read.
_RECEIVE_BUFFER: type[ReceiveBuffer] = choose("ReceiveBuffer", ReceiveBuffer)


def receive_buffer() -> ReceiveBuffer:
    """This thread's receive buffer (``read_buffer``) as one shared ``ReceiveBuffer``."""
    buffer: ReceiveBuffer | None = getattr(_local, "receiver", None)
    if buffer is None:
        buffer = _local.receiver = _RECEIVE_BUFFER(read_buffer())
    return buffer
