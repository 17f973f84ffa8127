"""harness/interop/watch.py's reading of `ss`: a socket's TCP info line
belongs to the socket line above it, and a socket without one (CI saw it)
does not shift the others."""

from harness.interop.watch import parse_ss

PORT = 18088
SERVER = "ESTAB      0      0      127.0.0.1:18088 127.0.0.1:42362"
CLIENT = "ESTAB      7      3      127.0.0.1:42362 127.0.0.1:18088"
INFO = "\t bbr wscale:10,10 rto:204 bytes_acked:{} bytes_received:{} segs_out:2"


def test_each_socket_takes_its_own_info_line():
    out = "\n".join([SERVER, INFO.format(10, 5), CLIENT, INFO.format(100, 50)]) + "\n"
    server, client = parse_ss(out, PORT)
    assert (server.client_side, server.moved) == (False, 15)
    assert (client.client_side, client.recv_q, client.send_q, client.moved) == (True, 7, 3, 150)


def test_a_socket_without_its_info_line_does_not_shift_the_next():
    out = "\n".join([SERVER, CLIENT, INFO.format(100, 50)]) + "\n"
    server, client = parse_ss(out, PORT)
    assert server.moved is None and client.moved == 150  # unknown, not 0
    assert client.state == "ESTAB" and client.recv_q == 7


def test_an_info_line_with_no_socket_above_is_left_out():
    assert parse_ss(INFO.format(1, 1) + "\n" + SERVER + "\n", PORT)[0].moved is None


def test_a_socket_whose_info_line_is_missing_once_is_not_progress(monkeypatch):
    from harness.interop import watch as module
    outs = iter([[SERVER, INFO.format(10, 5)], [SERVER], [SERVER, INFO.format(10, 5)]])
    monkeypatch.setattr(module, "connections", lambda port: parse_ss("\n".join(next(outs)), PORT))
    w = module.Watch(PORT)
    moved = []
    monkeypatch.setattr(w.progress, "moved", lambda: moved.append(1))
    for _ in range(3):
        w._next = 0.0
        w.check()
    assert moved == [1] and w.moved() == 0  # the first sample only: the watch began
