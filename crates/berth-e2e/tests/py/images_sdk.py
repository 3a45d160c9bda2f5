"""docker-py (the Python docker SDK) against a berth daemon: DOCKER_HOST and BUSYBOX_ARCHIVE
come from the Rust test that runs this script. Exits non-zero on the first failed check."""
import os
import sys

import docker

BUSYBOX_ID = "sha256:c50ff9579a6201a92c094cbcb771a8a33f805bfe4f407e782060abaa04a4c240"

client = docker.from_env()
assert client.ping() is True
v = client.version()
assert v["ApiVersion"] == "1.53", v
assert v["MinAPIVersion"] == "1.12", v
assert client.api.api_version == "1.53", client.api.api_version
info = client.info()
assert info["Driver"] == "overlay2", info

with open(os.environ["BUSYBOX_ARCHIVE"], "rb") as f:
    loaded = client.images.load(f.read())
assert [i.id for i in loaded] == [BUSYBOX_ID], loaded
assert loaded[0].tags == ["busybox:latest"], loaded[0].tags

img = client.images.get("busybox")
assert img.id == BUSYBOX_ID
assert img.attrs["Config"]["Cmd"] == ["sh"], img.attrs["Config"]
assert img.attrs["Os"] == "linux"
assert img.tag("example.com/py/box", tag="v2") is True
assert sorted(client.images.get(BUSYBOX_ID).tags) == ["busybox:latest", "example.com/py/box:v2"]
assert [i.id for i in client.images.list(name="example.com/py/box")] == [BUSYBOX_ID]
assert client.images.list(filters={"dangling": True}) == []

hist = img.history()
assert hist[0]["Id"] == BUSYBOX_ID and hist[0]["Tags"] == ["busybox:latest", "example.com/py/box:v2"], hist

try:
    client.images.get("nope:missing")
    sys.exit("expected ImageNotFound")
except docker.errors.ImageNotFound as e:
    assert "No such image: nope:missing" in str(e), str(e)

try:
    client.images.remove(BUSYBOX_ID)
    sys.exit("expected a 409 conflict")
except docker.errors.APIError as e:
    assert e.status_code == 409, e

client.images.remove("example.com/py/box:v2")
data = b"".join(img.save())
assert len(data) > 1024 * 100, len(data)
client.images.remove("busybox", force=True)
assert client.images.list() == []
print("docker-py ok")
