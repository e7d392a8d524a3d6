// One mailauth process for a whole conformance run: reads one JSON case a line on stdin
// ({id, ip, helo, sender, message: base64}) and writes one JSON answer a line on stdout
// ({id, spf, dkim: [...], dmarc, policy, error}), every DNS lookup sent to the nsd server of
// the run (argv[2] = "127.0.0.1:PORT") and nowhere else.
'use strict';
const path = require('path');
const dns = require('dns');
const readline = require('readline');

const modules = process.env.MAILAUTH_DIR
    ? path.join(process.env.MAILAUTH_DIR, 'node_modules')
    : path.join(__dirname, '..', '..', 'build-tools', 'mailauth', 'node_modules');
const { authenticate } = require(path.join(modules, 'mailauth'));

const resolverHandle = new dns.promises.Resolver({ timeout: 3000, tries: 1 });
resolverHandle.setServers([process.argv[2]]);
const resolver = async (name, rr) => resolverHandle.resolve(name, rr);

const CONCURRENCY = 8;
let running = 0;
let closed = false;
const queue = [];

async function run(c) {
    const out = { id: c.id };
    try {
        const res = await authenticate(Buffer.from(c.message, 'base64'), {
            ip: c.ip,
            helo: c.helo,
            sender: c.sender,
            mta: 'mx.example.test',
            resolver,
            disableArc: true,
            disableBimi: true
        });
        out.spf = res.spf ? res.spf.status.result : null;
        out.dkim = (res.dkim && res.dkim.results ? res.dkim.results : []).map(r => ({
            result: r.status.result,
            domain: r.signingDomain || null,
            comment: r.status.comment || null
        }));
        if (res.dmarc) {
            out.dmarc = res.dmarc.status ? res.dmarc.status.result : null;
            out.policy = res.dmarc.policy || null;
            out.p = res.dmarc.p || null;
            out.sp = res.dmarc.sp || null;
        } else {
            out.dmarc = null;
        }
    } catch (err) {
        out.error = String(err && err.stack ? err.stack : err);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
}

function pump() {
    while (running < CONCURRENCY && queue.length) {
        running++;
        run(queue.shift()).finally(() => {
            running--;
            pump();
        });
    }
    if (closed && running === 0 && !queue.length) {
        process.exit(0);
    }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', line => {
    if (line.trim()) {
        queue.push(JSON.parse(line));
        pump();
    }
});
rl.on('close', () => {
    closed = true;
    pump();
});
