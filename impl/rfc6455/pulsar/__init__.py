"""``rfc6455.pulsar``: the ``pulsar.apps.ws`` and ``pulsar.apps.wsgi`` names, on rfc6455.

Code written for pulsar's WebSocket app runs with one changed line::

    from pulsar.apps import ws, wsgi      # becomes
    from rfc6455.pulsar import ws, wsgi

Invariants:
- An adaptation layer only: every name is rfc6455's own class, or a subclass that maps a
  pulsar calling convention onto it (``ws.WebSocket``'s route, ``wsgi.createServer``'s
  ``bind``); the handshake, the connection and the server are rfc6455's, as strict.
- Where pulsar's documented behaviour and rfc6455's differ, rfc6455's holds and the module
  that maps the name says so: ``WS.match`` serves every request unless overridden (pulsar's
  returned ``None``, so its documented examples matched nothing), ``Frame.build_frame``
  always builds a well-formed frame, no extension is negotiated unless given.
"""

from . import ws, wsgi

__all__ = ["ws", "wsgi"]
