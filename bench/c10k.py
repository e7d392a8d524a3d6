#!/usr/bin/python3
"""C10K against sluice on loopback (issue 8). Run: `make c10k` (also part of `make bench`).

1. Starts sluice (auth checks off, max_connections = max_connections_per_ip = 20000) with its
   open-file limit raised, and measures a sender alone: C10K_MESSAGES messages, one connection
   each (as smtp-source does), timing connect->220 banner and MAIL->250 (bench.py's client).
2. A holder process (this file with --hold, Python asyncio) opens C10K_SESSIONS connections,
   spread over source addresses 127.0.0.2.. (1,000 each), reads the banner and says EHLO on
   each, then keeps them idle.
3. The same sender runs again while the sessions are held; then the holder sends NOOP on every
   session and counts the 250s (did sluice keep them all?), closes them, and the sender runs a
   third time alone (the machine is shared: this shows how much it drifted meanwhile).
Reports sluice's RSS before/with the idle sessions, RSS per idle session, the time to set up
the sessions, and the sender's latency alone vs under the idle load. Appends a section to
BENCH_OUT (bench/results.md) when called with --append; `make bench` runs it from bench.py
(--c10k), in the same work root.
"""
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SESSIONS = int(os.environ.get("C10K_SESSIONS", "10000"))
MESSAGES = int(os.environ.get("C10K_MESSAGES", "1000"))
PER_SOURCE = 1000
INFLIGHT = int(os.environ.get("C10K_INFLIGHT", "200"))


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else hard
    want = min(want, 1 << 20)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


# --- the holder (child process) ---------------------------------------------------------------
async def _reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def _open(port, i):
    src = "127.0.0.%d" % (2 + i // PER_SOURCE)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    if not (await _reply(reader)).startswith(b"220"):
        raise RuntimeError("no banner")
    writer.write(b"EHLO idle%d.example.com\r\n" % i)
    if not (await _reply(reader)).startswith(b"250"):
        raise RuntimeError("EHLO refused")
    return reader, writer


async def hold(port, n):
    conns, errors = [], 0
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(INFLIGHT)   # handshakes in flight: a burst, not a flood

    async def one(i):
        nonlocal errors
        async with sem:
            try:
                conns.append(await _open(port, i))
            except Exception:
                errors += 1
    await asyncio.gather(*(one(i) for i in range(n)))
    print("held %d errors %d seconds %.2f" % (len(conns), errors, time.perf_counter() - t0),
          flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    alive = 0

    async def noop(rw):
        nonlocal alive
        try:
            rw[1].write(b"NOOP\r\n")
            if (await asyncio.wait_for(_reply(rw[0]), 30)).startswith(b"250"):
                alive += 1
        except Exception:
            pass
    await asyncio.gather(*(noop(rw) for rw in conns))
    print("alive %d" % alive, flush=True)
    for _, w in conns:
        w.close()


# --- the driver -------------------------------------------------------------------------------
def sender(port, msg, n):
    from bench import RCPT, Smtp, dot_stuffed
    data = dot_stuffed(msg)
    conn_t, tx_t = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        c = Smtp(port)
        conn_t.append(time.perf_counter() - t0)   # connect, banner and EHLO
        tx_t.append(c.send_timed(data, RCPT))
        c.close()
    return conn_t, tx_t


def run(bench, append):
    """Measures, prints the section and, with append, adds it to bench.OUT. bench is the
    benchmark module whose work root is in use: `make bench` calls this from bench.py before it
    removes anything, since a deletion shortly before a run slows file creation on ext4
    without a journal (bench.py, work_root)."""
    from auth_fixtures import Keys
    nofile = raise_nofile()
    if nofile < SESSIONS + 100:
        sys.exit("open-file limit %d is too low for %d sessions" % (nofile, SESSIONS))
    keys = Keys()
    msg = bench.make_message(keys)
    s = bench.Sluice("plain")
    s.start(nofile=nofile)
    try:
        rss0 = bench.status_kb(s.pid, "VmRSS")
        base_conn, base_tx = sender(s.port, msg, MESSAGES)
        rss_base = bench.status_kb(s.pid, "VmRSS")
        holder = subprocess.Popen([sys.executable, __file__, "--hold", str(s.port),
                                   str(SESSIONS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        held_line = holder.stdout.readline().split()
        held, errors, setup_s = int(held_line[1]), int(held_line[3]), float(held_line[5])
        time.sleep(1)
        rss_idle = bench.status_kb(s.pid, "VmRSS")
        load_conn, load_tx = sender(s.port, msg, MESSAGES)
        rss_after = bench.status_kb(s.pid, "VmRSS")
        holder.stdin.write("\n")
        holder.stdin.flush()
        alive = int(holder.stdout.readline().split()[1])
        holder.wait()
        # alone again, now that the sessions are gone: shows how far the machine drifted
        after_conn, after_tx = sender(s.port, msg, MESSAGES)
        hwm = bench.status_kb(s.pid, "VmHWM")
        log_tail = [ln for ln in s.read_log().splitlines() if "refused" in ln or "accept:" in ln]
    finally:
        s.stop()
    P = bench.percentile
    per_session = (rss_idle - rss_base) * 1024 / max(held, 1)
    lines = [
        "## C10K", "",
        "`make c10k` (bench/c10k.py): %d idle SMTP sessions after EHLO (asyncio holder, source "
        "addresses 127.0.0.2–127.0.0.%d), sender: %d messages, one connection each." %
        (SESSIONS, 2 + (SESSIONS - 1) // PER_SOURCE, MESSAGES), "",
        "| measure | value |", "|---|---:|",
        "| sessions held / refused or failed | %d / %d |" % (held, errors),
        "| sessions still answering NOOP at the end | %d |" % alive,
        "| time to open them (%d handshakes in flight) | %.1f s |" % (INFLIGHT, setup_s),
        "| sluice RSS at start | %.1f MB |" % (rss0 / 1024),
        "| sluice RSS after the sender alone | %.1f MB |" % (rss_base / 1024),
        "| sluice RSS with the idle sessions | %.1f MB |" % (rss_idle / 1024),
        "| sluice RSS with idle sessions + sender | %.1f MB |" % (rss_after / 1024),
        "| sluice peak RSS (VmHWM) | %.1f MB |" % (hwm / 1024),
        "| RSS per idle session | %.1f KB |" % (per_session / 1024),
        "", "| sender latency, ms | alone | with %d idle sessions | alone again |" % held,
        "|---|---:|---:|---:|"]
    for label, q, xs in (("connect→EHLO reply p50", .5, (base_conn, load_conn, after_conn)),
                         ("connect→EHLO reply p99", .99, (base_conn, load_conn, after_conn)),
                         ("MAIL→250 p50", .5, (base_tx, load_tx, after_tx)),
                         ("MAIL→250 p99", .99, (base_tx, load_tx, after_tx))):
        lines.append("| %s | %s |" % (label, " | ".join("%.2f" % (P(x, q) * 1e3) for x in xs)))
    lines.append("")
    if log_tail:
        lines += ["sluice logged %d refusals/accept errors, first: `%s`" %
                  (len(log_tail), log_tail[0][:200]), ""]
    text = "\n".join(lines)
    print(text)
    if append:
        with open(bench.OUT, "a") as f:
            f.write("\n" + text)


def main():
    if "--hold" in sys.argv:
        raise_nofile()
        asyncio.run(hold(int(sys.argv[2]), int(sys.argv[3])))
        return
    import bench
    bench.work_root()
    try:
        run(bench, "--append" in sys.argv)
    finally:
        for d in bench.TRASH:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
