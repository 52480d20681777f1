# pulsar's documented WebSocket echo example, run by test_pulsar.py; only the import differs.
#
# Where the text comes from: the docstrings of pulsar's ``pulsar.apps.ws`` (quantmind/pulsar,
# pulsar/apps/ws/__init__.py, version 0.4, 2012; pulsar is BSD-licensed): the ``EchoWS``
# handler shown in the ``WS`` class's docstring, and the three lines of the ``WebSocket``
# middleware's docstring that build the app and serve it. There the handler is a placeholder
# ``MyWS`` and the chain is ``middleware=(..., wm)``, ``...`` standing for the application's
# other middleware; here the handler is ``EchoWS`` and there is no other middleware. Written
# here as a faithful equivalent of that text, not copied from it.
#
# Run as pulsar's examples were: ``python pulsar_echo_example.py [--bind HOST:PORT]``
# (default 127.0.0.1:8060).
from rfc6455.pulsar import ws, wsgi  # was: from pulsar.apps import ws, wsgi


class EchoWS(ws.WS):
    def on_open(self, environ):
        print("WebSocket opened")

    def on_message(self, environ, message):
        return message

    def on_close(self, environ):
        print("WebSocket closed")


wm = ws.WebSocket(handle=EchoWS())
app = wsgi.WsgiHandler(middleware=(wm,))

wsgi.createServer(callable=app).start()
