#!/usr/bin/env python3
"""Derive the field table the JSON-shape test checks inspect/list snapshots against.

Reads moby's api/swagger.yaml and its Go API types at one tag (API v1.41 = moby v20.10) from
a moby git checkout and prints, for each object type the daemon renders, every field with its
JSON type, whether swagger has it, and whether dockerd always sends it (a Go field without
`omitempty`). Nothing of moby's is copied: the output is berth's own test data.

    python3 scripts/swagger-fields.py /path/to/moby.git v20.10.27 \
        > crates/berth-daemon/tests/fixtures/moby-api-1.41-fields.json
"""
import json
import re
import subprocess
import sys

import yaml

REPO, TAG = sys.argv[1], sys.argv[2]


def show(path):
    return subprocess.run(
        ["git", "-C", REPO, "show", f"{TAG}:{path}"], check=True, capture_output=True, text=True
    ).stdout


swagger = yaml.safe_load(show("api/swagger.yaml"))
DEFS = swagger["definitions"]
PATHS = swagger["paths"]

# Top-level shapes: swagger schema -> the name used in the table.
ROOTS = {
    "ContainerInspect": PATHS["/containers/{id}/json"]["get"]["responses"][200]["schema"],
    "ContainerSummary": {"$ref": "#/definitions/ContainerSummary"},
    "Network": {"$ref": "#/definitions/Network"},
    "Volume": {"$ref": "#/definitions/Volume"},
    "ImageSummary": {"$ref": "#/definitions/ImageSummary"},
    "ImageInspect": {"$ref": "#/definitions/Image"},
}

# Table type -> (Go file, Go struct): the struct dockerd encodes for it.
GO = {
    "ContainerInspect": ("api/types/types.go", "ContainerJSON"),
    "ContainerSummary": ("api/types/types.go", "Container"),
    "ContainerSummary.HostConfig": None,
    "ContainerSummary.NetworkSettings": ("api/types/types.go", "SummaryNetworkSettings"),
    "ContainerState": ("api/types/types.go", "ContainerState"),
    "Health": ("api/types/types.go", "Health"),
    "HealthcheckResult": ("api/types/types.go", "HealthcheckResult"),
    "HostConfig": ("api/types/container/host_config.go", "HostConfig"),
    "ContainerConfig": ("api/types/container/config.go", "Config"),
    "HealthConfig": ("api/types/container/config.go", "HealthConfig"),
    "NetworkSettings": ("api/types/types.go", "NetworkSettings"),
    "EndpointSettings": ("api/types/network/network.go", "EndpointSettings"),
    "EndpointIPAMConfig": ("api/types/network/network.go", "EndpointIPAMConfig"),
    "MountPoint": ("api/types/types.go", "MountPoint"),
    "Mount": ("api/types/mount/mount.go", "Mount"),
    "RestartPolicy": ("api/types/container/host_config.go", "RestartPolicy"),
    "HostConfig.LogConfig": ("api/types/container/host_config.go", "LogConfig"),
    "GraphDriverData": ("api/types/graph_driver_data.go", "GraphDriverData"),
    "Network": ("api/types/types.go", "NetworkResource"),
    "IPAM": ("api/types/network/network.go", "IPAM"),
    "NetworkContainer": ("api/types/types.go", "EndpointResource"),
    "Volume": ("api/types/volume.go", "Volume"),
    "ImageSummary": ("api/types/image_summary.go", "ImageSummary"),
    "ImageInspect": ("api/types/types.go", "ImageInspect"),
    "Port": ("api/types/port.go", "Port"),
}

# Where swagger 1.41 is wrong about what dockerd sends: (type, field) -> (type, why).
OVERRIDES = {
    ("ContainerSummary", "Mounts"): (
        "[MountPoint]",
        "swagger says Mount; dockerd encodes types.Container.Mounts as []MountPoint",
    ),
    ("IPAM", "Config"): (
        "[IPAMConfig]",
        "swagger says a map of strings; dockerd encodes network.IPAMConfig (AuxiliaryAddresses is a map)",
    ),
}

# Types swagger 1.41 does not describe, from the Go struct dockerd encodes.
GO_ONLY = {
    "IPAMConfig": ("api/types/network/network.go", "IPAMConfig"),
}

GO_STRUCT = re.compile(r"^type (\w+) struct \{$")
GO_FIELD = re.compile(r"^\s+(\*?[\w.]+)(?:\s+(\S[^`]*?))?\s*(?:`([^`]*)`)?\s*(?://.*)?$")


def go_fields(path, name, seen=None):
    """{json key: (always sent, Go type)} of a Go struct, embedded structs flattened."""
    src = show(path).splitlines()
    out = {}
    inside = False
    depth = 0
    for line in src:
        if not inside:
            m = GO_STRUCT.match(line)
            inside = bool(m and m.group(1) == name)
            continue
        if line.startswith("}"):
            break
        s = line.strip()
        if depth:
            # Inside an inline struct field: its fields are not this struct's.
            depth += s.count("{") - s.count("}")
            continue
        if not s or s.startswith("//"):
            continue
        if s.endswith("struct {"):
            out[s.split()[0]] = (True, "struct")
            depth = 1
            continue
        m = GO_FIELD.match(line)
        if not m:
            continue
        first, typ, tag = m.group(1), m.group(2), m.group(3) or ""
        if typ is None or typ.startswith("`"):
            # Embedded: its fields are this struct's (Go's encoder flattens them).
            emb = first.lstrip("*").split(".")[-1]
            for p in [path, "api/types/types.go", "api/types/container/host_config.go"]:
                try:
                    f = go_fields(p, emb)
                except subprocess.CalledProcessError:
                    continue
                if f:
                    out.update(f)
                    break
            continue
        jt = re.search(r'json:"([^"]*)"', tag)
        key, opts = first, []
        if jt:
            parts = jt.group(1).split(",")
            if parts[0] == "-":
                continue
            key = parts[0] or first
            opts = parts[1:]
        out[key] = ("omitempty" not in opts, typ)
    return out


def go_nullable(t):
    """Can Go encode this type as null (a nil pointer, slice, map or interface)?"""
    t = t.strip()
    return t.startswith(("*", "[]", "map[")) or t in (
        "interface{}", "strslice.StrSlice", "nat.PortSet", "PortMap", "nat.PortMap")


def go_json_type(t):
    t = t.strip()
    if t.startswith("*"):
        return go_json_type(t[1:])
    if t.startswith("[]"):
        return "array"
    if t.startswith("map["):
        return "object"
    if t in ("string", "PortMap", "nat.PortSet", "strslice.StrSlice", "time.Duration"):
        return {"PortMap": "object", "nat.PortSet": "object", "strslice.StrSlice": "array",
                "time.Duration": "integer"}.get(t, "string")
    if t == "bool":
        return "boolean"
    if re.match(r"u?int(8|16|32|64)?$", t):
        return "integer"
    if t.startswith("float"):
        return "number"
    return "object"


TABLE = {}


def resolve(schema):
    while "$ref" in schema:
        schema = DEFS[schema["$ref"].split("/")[-1]]
    return schema


def props(schema):
    schema = resolve(schema)
    if schema.get("type") == "array":
        schema = resolve(schema["items"])
    out = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        out.update(props(part))
    return out


def type_of(schema, owner, field):
    """The table's type for a schema: a JSON type, `[T]`, `map<T>`, or an object type name."""
    ref = schema.get("$ref", "").split("/")[-1]
    s = resolve(schema)
    if s.get("type") == "array":
        return "[" + type_of(s.get("items", {}), owner, field) + "]"
    if s.get("properties") or s.get("allOf"):
        name = ref or f"{owner}.{field}"
        if name not in TABLE:
            add(name, s)
        return name
    if s.get("type") == "object" or "additionalProperties" in s:
        inner = s.get("additionalProperties")
        if isinstance(inner, dict) and inner:
            return "map<" + type_of(inner, owner, field) + ">"
        return "object"
    return s.get("type", "any")


def add(name, schema):
    TABLE[name] = {}
    fields = {}
    for k, v in props(schema).items():
        fields[k] = {"type": type_of(v, name, k), "swagger": True}
        if resolve(v).get("x-nullable"):
            fields[k]["nullable"] = True
    go = GO.get(name)
    if go:
        for k, (always, gt) in go_fields(*go).items():
            f = fields.setdefault(k, {"type": go_json_type(gt), "swagger": False})
            f["always"] = always
            if go_nullable(gt):
                f["nullable"] = True
    for (owner, k), (typ, why) in OVERRIDES.items():
        if owner == name:
            fields[k]["type"] = typ
            fields[k]["note"] = why
    TABLE[name] = dict(sorted(fields.items()))


for name, schema in ROOTS.items():
    add(name, schema)
for name, go in GO_ONLY.items():
    GO[name] = go
    add(name, {"properties": {}})

print(json.dumps(
    {"_about": f"moby {TAG} api/swagger.yaml + Go API types (scripts/swagger-fields.py)",
     "types": dict(sorted(TABLE.items()))},
    indent=1))
