"""PROXY protocol helpers for tests: build v1/v2 headers and connect from a chosen loopback
source address. Other tests (SPF, per-IP limits) can use a listener with
`proxy_protocol = true, trusted = { "127.0.0.1/32" }` and `proxied(port, "203.0.113.5")` to
appear to come from any address."""
import ipaddress
import socket
import struct

from sluice_harness import RawClient

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(src, dst="127.0.0.1", sport=40000, dport=25):
    fam = "TCP6" if ipaddress.ip_address(src).version == 6 else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2_raw(cmd=0x21, fam=0x11, body=b"", length=None):
    """A v2 header from its parts; length defaults to len(body) (override to lie)."""
    length = len(body) if length is None else length
    return V2_SIG + bytes([cmd, fam]) + struct.pack("!H", length) + body


def v2_header(src, dst=None, sport=40000, dport=25, tlv=b""):
    """A v2 PROXY (not LOCAL) header for TCP over the family of src."""
    a = ipaddress.ip_address(src)
    if dst is None:
        dst = "::1" if a.version == 6 else "127.0.0.1"
    body = a.packed + ipaddress.ip_address(dst).packed + struct.pack("!HH", sport, dport) + tlv
    return v2_raw(fam=0x21 if a.version == 6 else 0x11, body=body)


def v2_local():
    return v2_raw(cmd=0x20, fam=0x00)


class Client(RawClient):
    """A RawClient whose socket is bound to a chosen loopback source address (Linux routes all
    of 127/8 to loopback)."""

    def __init__(self, port, source="127.0.0.1", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""


def proxied(port, client_ip, version=2, client_port=40000):
    """Connects to a PROXY protocol listener from 127.0.0.1 and sends a header carrying
    client_ip; returns the client, ready to read the 220 banner."""
    c = Client(port)
    c.send(v2_header(client_ip, sport=client_port) if version == 2
           else v1_header(client_ip, sport=client_port))
    return c
