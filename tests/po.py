"""A small reader of gettext .po files (no dependency): entries with their comments, flags,
context and plural forms, for the tests that check the German catalogue."""
import re


def _unquote(s):
    s = s.strip()
    assert s.startswith('"') and s.endswith('"'), s
    body = s[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            n = body[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


class Entry:
    def __init__(self):
        self.comments = []
        self.flags = []
        self.ctx = None
        self.id = ""
        self.plural = None
        self.str = ""
        self.strs = {}
        self.obsolete = False

    @property
    def key(self):
        return (self.ctx, self.id)


def read(path):
    entries, cur, field = [], Entry(), None
    def flush():
        nonlocal cur
        if cur.id or cur.ctx is not None or cur.str or cur.strs or cur.comments:
            entries.append(cur)
        cur = Entry()
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if field is not None:
                flush()
                field = None
            continue
        if line.startswith("#~") or line.startswith("#|"):
            continue
        if line.startswith("#,"):
            if field is not None:
                flush()
                field = None
            cur.flags += [f.strip() for f in line[2:].split(",")]
            continue
        if line.startswith("#"):
            if field is not None:
                flush()
                field = None
            cur.comments.append(line)
            continue
        m = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr\[(\d+)\]|msgstr)\s+(".*")$', line)
        if m:
            kind, index, text = m.group(1), m.group(2), _unquote(m.group(3))
            if kind == "msgid" and field is not None and field.startswith("msgstr"):
                flush()
            field = kind
            if kind == "msgctxt":
                if cur.id or cur.str:
                    flush()
                cur.ctx = text
            elif kind == "msgid":
                cur.id = text
            elif kind == "msgid_plural":
                cur.plural = text
            elif kind == "msgstr":
                cur.str = text
            else:
                cur.strs[int(index)] = text
            continue
        if line.startswith('"'):
            text = _unquote(line)
            if field == "msgctxt":
                cur.ctx += text
            elif field == "msgid":
                cur.id += text
            elif field == "msgid_plural":
                cur.plural += text
            elif field == "msgstr":
                cur.str += text
            elif field and field.startswith("msgstr["):
                k = int(field[7:-1])
                cur.strs[k] += text
            continue
        raise ValueError(line)
    flush()
    return entries
