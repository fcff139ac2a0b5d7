"""``dt kv ...`` (``--secure``: secrets), ``dt tag ...`` and ``dt blob ...``.

Blob names arrive as URIs ``blob://<prefix>user-data/<name>``: ``<prefix>`` is the
``blob_storage_prefix`` tag (``local-`` when unset) and ``<name>`` is the blob's name in
localtailr, so the SDK's ``Blob`` and localtailr's see the same blobs.
"""

from __future__ import annotations

import datetime
import os

from ..core.errors import NotFoundError
from ..platform import blob as blob_ops
from ..platform import kv as kv_ops
from ..platform import tags as tag_ops
from .args import Args, spec
from .calling import LIST_OPTIONS, ctx, page
from .ids import acl_from_options, acl_out

TAG_DEFAULTS = {"blob_storage_prefix": "local-"}
USER_BUCKET = "user-data"
_ACL_OPTIONS = "groups others users"


def _kind(a: Args):
    return kv_ops.SECRETS if a.flag("secure") else kv_ops.KEYS


def _acl(c, a: Args):
    return acl_from_options(c, a.opt("users"), a.opt("groups"), a.opt("others"))


# -- kv -----------------------------------------------------------------------------


def _value(text: str) -> str:
    if text.startswith("file://"):
        path = text[len("file://"):]
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise ValueError(f"cannot read the value from {path}: {exc.strerror}") from None
    return text


def kv_put(a: Args):
    c = ctx(a)
    key, value = a.positionals
    kv_ops.put(c, key, _value(value), _acl(c, a), _kind(a))
    if a.flag("json-enrichened"):
        return {"key": key, "environment": c.environment}


def kv_get(a: Args):
    return kv_ops.get(ctx(a), a.positionals[0], _kind(a))


def kv_ls(a: Args):
    c = ctx(a)
    kind = _kind(a)
    prefix = a.positionals[0] if a.positionals else ""
    items = []
    for row in kv_ops.ls(c, kind):
        if not row["key"].startswith(prefix):
            continue
        item = {"key": row["key"], "environment": c.environment}
        if a.flag("acls"):
            item["acl"] = acl_out(row["acl"])
        if a.flag("include-values"):
            item["value"] = kv_ops.get(c, row["key"], kind)
        items.append(item)
    shown = page(items, a)
    return {"items": shown, "total": len(items)}


def kv_acls(a: Args):
    return acl_out(kv_ops.acls(ctx(a), a.positionals[0], _kind(a)))


def _require_acl(c, a: Args) -> dict:
    acl = _acl(c, a)
    if acl is None:
        raise ValueError("give the ACL with --users name:letters and/or --groups name:letters")
    return acl


def kv_set_acls(a: Args):
    c = ctx(a)
    return acl_out(kv_ops.set_acls(c, a.positionals[0], _require_acl(c, a), _kind(a)))


def kv_add_acls(a: Args):
    c = ctx(a)
    return acl_out(kv_ops.add_acls(c, a.positionals[0], _require_acl(c, a), _kind(a)))


def kv_rm(a: Args):
    kv_ops.delete(ctx(a), a.positionals[0], _kind(a))


# -- tag ----------------------------------------------------------------------------


def tag_value(c, name: str) -> str:
    try:
        return tag_ops.get(c, name)
    except NotFoundError:
        return TAG_DEFAULTS.get(name, "")


def tag_get(a: Args):
    return tag_value(ctx(a), a.positionals[0]) or None


def tag_set(a: Args):
    tag_ops.set(ctx(a), *a.positionals)


def tag_ls(a: Args):
    c = ctx(a)
    out = dict(TAG_DEFAULTS)
    out.update({t["name"]: t["value"] for t in tag_ops.ls(c)})
    return out


# -- blob ---------------------------------------------------------------------------


def blob_name(c, uri: str, folder: bool = False) -> str:
    """The localtailr blob name of ``blob://<prefix>user-data/<name>`` (or of a bare name)."""
    if not uri.startswith("blob://"):
        name = uri
    else:
        bucket, _, name = uri[len("blob://"):].partition("/")
        expected = tag_value(c, "blob_storage_prefix") + USER_BUCKET
        if bucket != expected:
            raise ValueError(f"no bucket {bucket!r} here: localtailr has one bucket, "
                             f"blob://{expected}/")
    name = name.lstrip("/")
    if folder:
        return name.rstrip("/")
    return blob_ops.validate_name(name)


def _uri(a: Args) -> str:
    if len(a.positionals) == 2:
        return a.positionals[0].rstrip("/") + "/" + a.positionals[1].lstrip("/")
    return a.positionals[0]


def blob_put(a: Args):
    c = ctx(a)
    blob_ops.put(c, blob_name(c, a.positionals[0]), a.input(), _acl(c, a))


def blob_get(a: Args):
    c = ctx(a)
    return blob_ops.open_blob(c, blob_name(c, _uri(a)))  # streamed out by the caller


def blob_exists(a: Args):
    c = ctx(a)
    return blob_ops.exists(c, blob_name(c, _uri(a)))


def blob_rm(a: Args):
    c = ctx(a)
    uris = [_uri(a)] if len(a.positionals) == 2 and not a.positionals[1].startswith("blob://") \
        else a.positionals
    names = [blob_name(c, u) for u in uris]
    missing = [n for n in names if not blob_ops.exists(c, n)]
    if missing:
        raise NotFoundError(f"blob {missing[0]!r} not found")
    for name in names:
        blob_ops.delete(c, name)


def blob_cp(a: Args):
    c = ctx(a)
    src, dst = a.positionals
    if src.startswith("blob://") and not dst.startswith("blob://"):
        blob_ops.get_file(c, blob_name(c, src), os.path.abspath(dst))
    elif dst.startswith("blob://") and not src.startswith("blob://"):
        blob_ops.put_file(c, blob_name(c, dst), os.path.abspath(src), _acl(c, a))
    elif src.startswith("blob://"):
        with blob_ops.open_blob(c, blob_name(c, src)) as f:
            blob_ops.put(c, blob_name(c, dst), f, _acl(c, a))
    else:
        raise ValueError("blob cp copies to or from a blob:// URI; both paths are local")


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()


def blob_ls(a: Args):
    c = ctx(a)
    folder = blob_name(c, _uri(a), folder=True) if a.positionals else ""
    rows = blob_ops.ls(c, folder)
    base = f"{folder}/" if folder else ""
    out, seen = [], set()
    for row in rows:
        rest = row["name"][len(base):]
        if "/" in rest and not a.flag("recursive"):
            sub = base + rest.split("/", 1)[0]
            if sub not in seen:
                seen.add(sub)
                out.append({"name": sub + "/", "size": 0, "last_modified": None, "is_file": False})
            continue
        out.append({"name": row["name"], "size": row["size"],
                    "last_modified": _when(row["updated_at"]), "is_file": True})
    text = a.opt("filter") or ""
    if text:
        out = [r for r in out if text in r["name"]]
    return page(out, a)


def blob_get_acl(a: Args):
    c = ctx(a)
    return acl_out(blob_ops.get_acl(c, blob_name(c, a.positionals[0])))


def blob_set_acl(a: Args):
    c = ctx(a)
    return acl_out(blob_ops.set_acl(c, blob_name(c, a.positionals[0]), _require_acl(c, a)))


_KV = "secure environment"
COMMANDS = {
    "kv": {
        "put": (spec("key value", "secure json-enrichened", f"{_ACL_OPTIONS} environment"), kv_put),
        "get": (spec("key", "secure json pretty", "environment"), kv_get),
        "ls": (spec("key_prefix", "acls secure include-values json pretty",
                    f"environment {LIST_OPTIONS}", min=0), kv_ls),
        "acls": (spec("key", "secure json pretty", "environment"), kv_acls),
        "set-acls": (spec("key", "secure", f"{_ACL_OPTIONS} environment"), kv_set_acls),
        "add-acls": (spec("key", "secure", f"{_ACL_OPTIONS} environment"), kv_add_acls),
        "rm": (spec("key", "secure", "environment"), kv_rm),
    },
    "tag": {
        "get": (spec("tag", "pretty"), tag_get),
        "set": (spec("key value"), tag_set),
        "ls": (spec("", "json pretty"), tag_ls),
    },
    "blob": {
        "put": (spec("destination_file", "", _ACL_OPTIONS), blob_put),
        "get": (spec("bucket_name file_name", min=1), blob_get),
        "exists": (spec("bucket_name file_name", min=1), blob_exists),
        "rm": (spec("bucket_name file_name ...", min=1), blob_rm),
        "cp": (spec("source_file destination_bucket", "", _ACL_OPTIONS), blob_cp),
        "ls": (spec("bucket_name file_name", "recursive json pretty", LIST_OPTIONS, min=0), blob_ls),
        "get-acl": (spec("path", "json pretty"), blob_get_acl),
        "set-acl": (spec("path", "", _ACL_OPTIONS), blob_set_acl),
    },
}
UNSUPPORTED = {"tag": {"rm": "localtailr keeps every tag it was given; set a new value instead"}}
