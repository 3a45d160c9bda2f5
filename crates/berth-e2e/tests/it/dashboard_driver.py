"""Drives berth's dashboard in headless Chromium (selenium + chromedriver) through the whole
first-use path: log in with the one-time link, pull an image and watch its layers, run it with a
published port from the form, see it running with live stats, read a log line as it is printed,
type into the in-browser shell, upload and download a file, stop and remove it; tag, push and
read the history of an image; bulk start/stop, a compose project up and down, a network created
and removed, stopped containers pruned; plus a forged cross-site form post from another local
origin, which must be refused. Saves a screenshot per page into SHOTS.

usage: dashboard_driver.py LOGIN_URL IMAGE_REF HOST_PORT NAME SHOTS PROFILE_DIR SIGNAL_DIR
(creating SIGNAL_DIR/restart asks the test to restart the daemon; it answers SIGNAL_DIR/restarted)
Run by crates/berth-e2e/tests/it/dashboard.rs; prints DASHBOARD OK at the end.
"""
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

login_url, image_ref, host_port, name, shots, profile, signals = sys.argv[1:8]
origin = re.match(r"(https?://[^/]+)", login_url).group(1)
os.makedirs(shots, exist_ok=True)
shot_no = [0]


def shot(what):
    shot_no[0] += 1
    path = os.path.join(shots, f"{shot_no[0]:02d}-{what}.png")
    drv.save_screenshot(path)
    print(f"screenshot {path}", flush=True)


def wait(cond, what, timeout=60):
    """Poll cond(driver) until truthy; fail with `what` and a screenshot."""
    def safe(d):
        # Not there yet, or not parseable yet (the inspect tab shows "…" until its answer
        # comes): keep polling. An exception escaping here would end the wait at once.
        try:
            return cond(d)
        except (NoSuchElementException, StaleElementReferenceException, ValueError, KeyError,
                IndexError, TypeError):
            return False
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.2).until(safe)
    except Exception:
        shot("FAILED-" + re.sub(r"[^a-z0-9]+", "-", what.lower())[:40])
        banner = drv.find_elements(By.ID, "banner")
        panel = drv.find_elements(By.ID, "tab-panel")
        console = [e["message"][:300] for e in drv.get_log("browser")][-10:]
        raise AssertionError(
            f"timed out waiting for {what}; banner: {banner[0].text if banner else ''!r}; "
            f"url {drv.current_url}; "
            f"tab panel: {panel[0].get_attribute('outerHTML')[:400] if panel else None!r}; "
            f"last console lines: {console}")


def css(sel):
    return drv.find_element(By.CSS_SELECTOR, sel)


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          f"--user-data-dir={profile}", "--window-size=1280,1000", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
downloads = os.path.join(profile, "downloads")
os.makedirs(downloads, exist_ok=True)
opts.add_experimental_option("prefs", {"download.default_directory": downloads,
                                       "download.prompt_for_download": False})
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
drv.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
registry = image_ref.split("/")[0]


def engine(method, path, body=None):
    """One Engine API call from the page itself (its session, its X-Berth-UI header)."""
    return drv.execute_async_script("""
        const [method, path, body, done] = arguments;
        fetch('/api' + path, {method, credentials: 'same-origin',
            headers: {'X-Berth-UI': '1', 'Content-Type': 'application/json'},
            body: body === null ? undefined : JSON.stringify(body)})
          .then(async (r) => done({status: r.status, text: await r.text()}),
                (e) => done({status: 0, text: String(e)}));
    """, method, path, body)


def accept_confirm():
    WebDriverWait(drv, 10).until(lambda d: d.switch_to.alert).accept()
try:
    # 1. Without the link: the login page (answered 401), no dashboard.
    drv.get(origin + "/")
    wait(lambda d: css("#login-note").text, "the login page")
    assert not drv.find_elements(By.ID, "view"), "dashboard shown without logging in"
    shot("login")

    # 2. The one-time link logs in and lands on the containers page.
    drv.get(login_url)
    wait(lambda d: css("#containers tbody tr"), "the containers table")
    wait(lambda d: css("#conn").get_attribute("data-state") == "live", "the live events stream")
    shot("containers-empty")

    # 3. Pull from the local registry, with a row per layer.
    css("#nav-images").click()
    css("#pull-ref").send_keys(image_ref)
    css("#pull-submit").click()
    wait(lambda d: css("#pull-status").get_attribute("data-done") in ("1", "error"), "the pull to end", 120)
    assert css("#pull-status").get_attribute("data-done") == "1", css("#banner").text
    layers = drv.find_elements(By.CSS_SELECTOR, "#pull-layers li[data-layer]")
    assert layers, "no per-layer progress shown"
    statuses = [li.get_attribute("data-status") for li in layers]
    assert all(s in ("Pull complete", "Already exists") for s in statuses), statuses
    bars = [li.find_element(By.TAG_NAME, "progress") for li in layers]
    assert all(b.get_attribute("value") == b.get_attribute("max") for b in bars), "a layer bar is not full"
    print(f"pulled: {len(layers)} layer(s), final status {css('#pull-status').text!r}", flush=True)
    shot("images-pulled")

    # 4. Run it from the form: name, a published port, env, a command that serves and logs.
    wait(lambda d: any(o.get_attribute("value") == image_ref
                       for o in d.find_elements(By.CSS_SELECTOR, "#run-image option")), "the image in the run form")
    Select(css("#run-image")).select_by_value(image_ref)
    css("#run-name").send_keys(name)
    css("#run-ports").send_keys(f"{host_port}:8080")
    css("#run-env").send_keys("GREETING=hello-dash")
    css("#run-cmd").send_keys(
        'httpd -p 8080 -h /etc; i=0; while true; do echo "$GREETING tick $i"; i=$((i+1)); sleep 1; done')
    css("#run-cpus").send_keys("0.5")
    shot("run-form")
    css("#run-submit").click()
    wait(lambda d: re.search(r"#/containers/[0-9a-f]{64}$", d.current_url), "the container's page")
    cid = drv.current_url.rsplit("/", 1)[1]
    wait(lambda d: css("#detail-state").text == "running", "the container running")

    # 5. Logs follow: a line printed after the page opened appears by itself.
    def ticks(d):
        return [int(n) for n in re.findall(r"hello-dash tick (\d+)", css("#logs").text)]
    wait(lambda d: ticks(d), "a first log line")
    seen = max(ticks(drv))
    wait(lambda d: max(ticks(d)) >= seen + 2, f"log line tick {seen + 2} to be followed")
    print(f"logs: followed from tick {seen} to {max(ticks(drv))}", flush=True)

    # 6. Live stats: samples keep arriving.
    wait(lambda d: int(css("#detail-stats").get_attribute("data-samples") or 0) >= 2, "live stats")
    wait(lambda d: int(css("#detail-charts").get_attribute("data-samples") or 0) >= 2, "the stats charts")
    labels = [c.get_attribute("aria-label") for c in drv.find_elements(By.CSS_SELECTOR, "#detail-charts svg.chart")]
    assert len(labels) == 2 and labels[0].startswith("CPU: ") and labels[1].startswith("memory: "), labels
    assert "%" in css("#detail-stats").text, css("#detail-stats").text
    shot("container-logs")

    # 7. The shell: type a command, read its output in the terminal.
    css("#tab-shell").click()
    wait(lambda d: css("#terminal").get_attribute("data-connected") == "1", "the shell to connect")
    area = css("#terminal .xterm-helper-textarea")
    area.send_keys("echo dash-$((6*7)) $GREETING" + Keys.ENTER)
    wait(lambda d: "dash-42 hello-dash" in css("#terminal .xterm-rows").text, "the shell's output")
    shot("container-shell")

    # 8. Inspect.
    css("#tab-inspect").click()
    # The element's own text, not WebDriver's idea of the visible text of a scrolled <pre>.
    def inspected():
        return json.loads(drv.execute_script("return document.getElementById('inspect').textContent"))
    wait(lambda d: inspected()["Id"] == cid, "the inspect JSON")
    limits = inspected()["HostConfig"]
    assert limits["NanoCpus"] == 500_000_000, limits
    shot("container-inspect")

    # 8b. Files: list /, upload a file into /tmp, see it listed with its size, download it back.
    css("#tab-files").click()
    wait(lambda d: css("#files-status").get_attribute("data-state") == "done", "the root listing")
    wait(lambda d: css('#files tr[data-name="etc"]').get_attribute("data-type") == "dir", "etc/ in the listing")
    path_box = css("#files-path")
    path_box.clear()
    path_box.send_keys("/tmp" + Keys.ENTER)
    wait(lambda d: "in /tmp" in css("#files-status").text, "the /tmp listing")
    payload = f"uploaded by the dashboard for {name}\n" * 100
    local = os.path.join(profile, f"up-{name}.txt")
    with open(local, "w") as f:
        f.write(payload)
    css("#files-upload").send_keys(local)
    up_row = f'#files tr[data-name="up-{name}.txt"]'
    wait(lambda d: css(up_row).get_attribute("data-size") == str(len(payload)), "the uploaded file listed")
    shot("container-files")
    css(f'{up_row} button[data-action="download"]').click()
    fetched = os.path.join(downloads, f"up-{name}.txt")
    wait(lambda d: os.path.exists(fetched) and open(fetched).read() == payload, "the downloaded file", 30)
    print(f"files: uploaded and downloaded {len(payload)} bytes through /tmp", flush=True)

    # 8c. Settings (berth update): a second port live — same process, served — and removed
    # again; then an env var through a managed recreate (same id, a new process).
    def inspect_now():
        return json.loads(engine("GET", f"/containers/{cid}/json")["text"])
    pid0 = inspect_now()["State"]["Pid"]
    s_ = socket.socket()
    s_.bind(("127.0.0.1", 0))
    port2 = s_.getsockname()[1]
    s_.close()
    css("#tab-settings").click()
    css("#settings-ports").send_keys(f"127.0.0.1:{port2}:8080")
    css("#settings-preview").click()
    wait(lambda d: css("#settings-result").get_attribute("data-state") == "previewed", "the preview")
    assert css("#settings-result").get_attribute("data-restart") == "false", css("#settings-result").text
    css("#settings-apply").click()
    port_box = f'#settings-form input[data-port-rm*="{port2}"]'
    wait(lambda d: css(port_box), "the added port listed")
    assert css("#settings-result").get_attribute("data-action") == "live", css("#settings-result").text
    body = urllib.request.urlopen(f"http://127.0.0.1:{port2}/hostname", timeout=10).read()
    assert body.strip(), "the added port answered nothing"
    assert inspect_now()["State"]["Pid"] == pid0, "adding a port restarted the process"
    shot("container-settings")
    css(port_box).click()
    css("#settings-apply").click()
    wait(lambda d: not d.find_elements(By.CSS_SELECTOR, port_box), "the added port removed")
    css("#settings-env").send_keys("EDITED=by-the-dashboard")
    css("#settings-apply").click()
    wait(lambda d: css("#settings-result").get_attribute("data-action") == "recreate", "the recreate")
    after = inspect_now()
    assert "EDITED=by-the-dashboard" in after["Config"]["Env"], after["Config"]["Env"]
    assert after["Id"] == cid and after["State"]["Running"] and after["State"]["Pid"] != pid0, after["State"]
    print(f"settings: port {port2} added live and removed, env added by a recreate", flush=True)

    # 9. The list: running, live stats, the port as a link that reaches the app.
    css("#nav-containers").click()
    row = f'#containers tr[data-name="{name}"]'
    wait(lambda d: css(row).get_attribute("data-state") == "running", "the container listed running")
    wait(lambda d: int(css(f"{row} [data-stats]").get_attribute("data-samples") or 0) >= 2, "stats in the list")
    link = css(f"{row} a.port").get_attribute("href")
    assert link == f"http://127.0.0.1:{host_port}/", link
    body = urllib.request.urlopen(f"http://127.0.0.1:{host_port}/hostname", timeout=10).read()
    assert body.strip(), "the published port answered nothing"
    shot("containers-running")

    # 9a. Networks and disk usage: the default bridge, the pulled image.
    css("#nav-networks").click()
    wait(lambda d: css('#networks tr[data-name="bridge"]'), "the bridge network")
    shot("networks")
    css("#nav-df").click()
    wait(lambda d: int(css('#df tr[data-type="Images"] td:nth-child(2)').text) >= 1, "the image in disk usage")
    shot("disk-usage")
    css("#nav-containers").click()
    wait(lambda d: css(row).get_attribute("data-state") == "running", "the containers page again")

    # 9b. A daemon restart: the page notices, reconnects by itself, and stays logged in.
    open(os.path.join(signals, "restart"), "w").close()
    wait(lambda d: css("#conn").get_attribute("data-state") == "reconnecting…", "the page to notice the restart")
    wait(lambda d: os.path.exists(os.path.join(signals, "restarted")), "the daemon to restart", 90)
    wait(lambda d: css("#conn").get_attribute("data-state") == "live", "the page to reconnect", 30)
    wait(lambda d: css(row).get_attribute("data-state") == "running", "the container listed after the restart")
    wait(lambda d: int(css(f"{row} [data-stats]").get_attribute("data-samples") or 0) >= 2, "stats after the restart")
    print("daemon restart: the page reconnected by itself", flush=True)

    # 9c. An engine error is a clear message, not a blank page: the name is taken.
    css("#nav-images").click()
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'#run-image option[value="{image_ref}"]'), "the run form")
    Select(css("#run-image")).select_by_value(image_ref)
    css("#run-name").send_keys(name)
    css("#run-submit").click()
    wait(lambda d: "already in use" in css("#banner").text, "the name-in-use error")
    print(f"engine error shown: {css('#banner').text!r}", flush=True)
    shot("run-error")

    # 9d. Dark and light follow the system; a narrow window stacks the table.
    def background():
        return drv.execute_script("return getComputedStyle(document.body).backgroundColor")
    css("#nav-containers").click()
    wait(lambda d: css(row), "the containers page")
    light = background()
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia",
                        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    wait(lambda d: background() != light, "the dark colours")
    drv.set_window_size(420, 900)
    wait(lambda d: css(row).size["width"] <= 420, "the narrow layout")
    assert css(f'{row} button[data-action="stop"]').is_displayed(), "actions hidden on a narrow window"
    shot("containers-dark-narrow")
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    drv.set_window_size(1280, 1000)

    # 10. A forged cross-site form from another local origin (same site: the Strict cookie is
    # sent along) must not create anything.
    class Forger(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            page = (f'<!doctype html><form id="f" method="post" enctype="text/plain" '
                    f'action="{origin}/api/containers/create?name={name}-forged">'
                    f'<input name=\'{{"Image":"{image_ref}","x":"\' value=\'"}}\'>'
                    f'<button id="go">go</button></form>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass
    forger = http.server.HTTPServer(("127.0.0.1", 0), Forger)
    threading.Thread(target=forger.serve_forever, daemon=True).start()
    drv.get(f"http://127.0.0.1:{forger.server_address[1]}/")
    css("#go").click()
    wait(lambda d: "cross-site request refused" in d.find_element(By.TAG_NAME, "body").text,
         "the forged post to be refused")
    print("forged cross-site post: " + drv.find_element(By.TAG_NAME, "body").text, flush=True)
    forger.shutdown()
    drv.get(origin + "/#/containers")
    wait(lambda d: css(row).get_attribute("data-state") == "running", "the dashboard again")
    assert not drv.find_elements(By.CSS_SELECTOR, f'#containers tr[data-name="{name}-forged"]'), \
        "the forged post created a container"

    # 10b. Pause and unpause from the list.
    css(f'{row} button[data-action="pause"]').click()
    wait(lambda d: css(row).get_attribute("data-state") == "paused", "the container paused")
    css(f'{row} button[data-action="unpause"]').click()
    wait(lambda d: css(row).get_attribute("data-state") == "running", "the container unpaused")

    # 11. Stop, then remove (with its confirmation), live from events.
    css(f'{row} button[data-action="stop"]').click()
    wait(lambda d: css(row).get_attribute("data-state") == "exited", "the container stopped")
    shot("containers-stopped")
    css(f'{row} button[data-action="remove"]').click()
    WebDriverWait(drv, 10).until(lambda d: d.switch_to.alert).accept()
    wait(lambda d: not d.find_elements(By.CSS_SELECTOR, row), "the container removed")
    shot("containers-removed")

    # 11b. Images: history, a new tag, and a push of it to the registry.
    css("#nav-images").click()
    irow = f'#images tr[data-tags~="{image_ref}"]'
    wait(lambda d: css(irow), "the image row")
    css(f'{irow} button[data-action="more"]').click()
    more = f'#images tr.image-more[data-for="{css(irow).get_attribute("data-id")}"]'
    wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, f"{more} table.history tbody tr")) >= 1, "the image history")
    pushed = f"{registry}/dash-tagged-{name}/busybox:v2"
    css(f'{more} input[data-field="tag-ref"]').send_keys(pushed)
    css(f'{more} button[data-action="tag"]').click()
    wait(lambda d: pushed in css(irow).get_attribute("data-tags").split(), "the new tag")
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'{more} select[data-field="push-ref"] option[value="{pushed}"]'),
         "the new tag in the push list")
    Select(css(f'{more} select[data-field="push-ref"]')).select_by_value(pushed)
    css(f'{more} button[data-action="push"]').click()
    wait(lambda d: css(f'{more} [data-field="push-status"]').get_attribute("data-done") in ("1", "error"), "the push")
    assert css(f'{more} [data-field="push-status"]').get_attribute("data-done") == "1", css("#banner").text
    tags = json.loads(urllib.request.urlopen(
        f"http://{registry}/v2/dash-tagged-{name}/busybox/tags/list", timeout=10).read())
    assert tags["tags"] == ["v2"], tags
    shot("image-tag-push-history")
    print(f"images: tagged and pushed {pushed}", flush=True)

    # 11c. Bulk actions and a compose project: created through the engine, driven from the page.
    project = f"proj-{name}"
    loop = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
    for cname, labels in ((f"{name}-solo", {}),
                          (f"{name}-web", {"com.docker.compose.project": project}),
                          (f"{name}-db", {"com.docker.compose.project": project})):
        r = engine("POST", f"/containers/create?name={cname}", {"Image": image_ref, "Cmd": loop, "Labels": labels})
        assert r["status"] == 201, r
    r = engine("POST", "/networks/create", {"Name": f"{project}_default",
                                            "Labels": {"com.docker.compose.project": project}})
    assert r["status"] == 201, r
    css("#nav-containers").click()
    solo, web, db = (f'#containers tr[data-name="{name}-{x}"]' for x in ("solo", "web", "db"))
    wait(lambda d: css(f'tbody[data-project="{project}"] tr.project'), "the project's group")
    assert len(drv.find_elements(By.CSS_SELECTOR, f'tbody[data-project="{project}"] tr[data-id]')) == 2
    for r_ in (solo, web):
        css(f"{r_} input[data-select]").click()
    wait(lambda d: css("#bulk-count").text == "2 selected", "two selected")
    css('button[data-bulk="start"]').click()
    wait(lambda d: all(css(x).get_attribute("data-state") == "running" for x in (solo, web)), "both started")
    assert css(db).get_attribute("data-state") == "created"
    css('button[data-bulk="stop"]').click()
    wait(lambda d: all(css(x).get_attribute("data-state") == "exited" for x in (solo, web)), "both stopped")
    shot("containers-bulk")
    css(f'tr.project[data-project="{project}"] button[data-project-action="up"]').click()
    wait(lambda d: all(css(x).get_attribute("data-state") == "running" for x in (web, db)), "the project up")
    shot("containers-project-up")
    css(f'tr.project[data-project="{project}"] button[data-project-action="down"]').click()
    accept_confirm()
    wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f'tbody[data-project="{project}"]'), "the project down")
    nets = json.loads(engine("GET", "/networks")["text"])
    assert not [n for n in nets if n["Name"] == f"{project}_default"], "down left the project's network"
    print("bulk start/stop and project up/down done", flush=True)

    # 11d. Networks: create one from the form, then remove it.
    css("#nav-networks").click()
    css("#network-name").send_keys(f"net-{name}")
    css("#network-create").click()
    nrow = f'#networks tr[data-name="net-{name}"]'
    wait(lambda d: css(nrow), "the new network")
    css(f'{nrow} button[data-action="remove-network"]').click()
    accept_confirm()
    wait(lambda d: not d.find_elements(By.CSS_SELECTOR, nrow), "the network removed")

    # 11e. Disk usage: prune stopped containers (the stopped solo one), counted in the note.
    css("#nav-df").click()
    wait(lambda d: css('#df tr[data-type="Containers"] td:nth-child(2)').text == "1", "one stopped container in df")
    css('button[data-prune="Containers"]').click()
    accept_confirm()
    wait(lambda d: css("#prune-result").text.startswith("removed 1 stopped containers"), "the prune result")
    wait(lambda d: css('#df tr[data-type="Containers"] td:nth-child(2)').text == "0", "df after the prune")
    shot("disk-usage-pruned")

    # 12. The events feed saw it all.
    css("#nav-events").click()
    wait(lambda d: "destroy" in css("#events").text, "the destroy event in the feed")
    shot("events")

    # No script error and no CSP violation on any page.
    bad = [e["message"] for e in drv.get_log("browser")
           if e["level"] == "SEVERE"
           # the login page (401), the refused forgery (403) and the name in use (409) are
           # expected answers, and so are the streams and pings the daemon restart cut
           and not any(x in e["message"] for x in (
               "status of 401", "status of 403", "status of 409", "ERR_INCOMPLETE_CHUNKED_ENCODING",
               "ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "ERR_CONNECTION_RESET"))]
    assert not bad, f"browser console errors: {bad}"
    print("DASHBOARD OK", flush=True)
finally:
    drv.quit()
