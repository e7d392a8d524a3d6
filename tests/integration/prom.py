"""Reads sluice's Prometheus endpoint: the exposition text parsed into samples, with lookups by
name and labels, for the tests that check metric values."""
import re
import urllib.request

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


class Metrics:
    """One scrape. samples: (name, {label: value}, float) in the order of the text."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        self.types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.types[name] = kind
                continue
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            if not m:
                raise AssertionError("not a sample line: %r" % line)
            labels = {k: v for k, v in _LABEL.findall(m.group(2) or "")}
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def problems(self):
        """What promtool would object to, as text lines: a sample without a TYPE before it,
        a family split in two, a sample repeated, a histogram without +Inf or with _count
        unlike its +Inf bucket. [] when well-formed."""
        out, seen, done, current = [], set(), set(), None
        for name, labels, _ in self.samples:
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[:-len(suffix)]
                if name.endswith(suffix) and self.types.get(base) == "histogram":
                    family = base
            if family not in self.types:
                out.append("no TYPE for %s" % name)
            if family != current:
                if family in done:
                    out.append("family %s split" % family)
                if current:
                    done.add(current)
                current = family
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                out.append("repeated sample %s%r" % key)
            seen.add(key)
        for family, kind in self.types.items():
            if kind != "histogram":
                continue
            groups = {}
            for name, labels, v in self.samples:
                if name.startswith(family + "_"):
                    rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                    groups.setdefault(rest, {})[(name, labels.get("le"))] = v
            for rest, g in groups.items():
                inf = g.get((family + "_bucket", "+Inf"))
                if inf is None or g.get((family + "_count", None)) != inf:
                    out.append("histogram %s%r: +Inf bucket and _count differ" % (family, rest))
        return out

    def rows(self, name, **labels):
        """The samples of name whose labels include labels, as ({labels}, value)."""
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == want for k, want in labels.items())]

    def value(self, name, **labels):
        """The one sample of name with exactly these labels; AssertionError when absent."""
        for n, l, v in self.samples:
            if n == name and l == labels:
                return v
        raise AssertionError("no sample %s%r in:\n%s" % (name, labels, self.text))

    def total(self, name, **labels):
        """The sum over the samples of name whose labels include labels."""
        return sum(v for _, v in self.rows(name, **labels))


def metrics(port):
    return Metrics(scrape(port))
