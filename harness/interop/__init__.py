"""Real WebSocket clients against the reference server's /ws (U-WS-6):
each client behind one small interface (clients.py), the progress watch
that bounds their waits (watch.py), the Python clients (pyclients.py) and
the JavaScript ones, Node's ws and Chromium (jsclients.py, agent.js)."""
