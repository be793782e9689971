# Checks what nix/tests/eval.nix evaluates to (read from stdin); see eval.sh.
import glob, json, os, re, sys

got = json.load(sys.stdin)
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

# package.nix: the release build's flags, the version stamped.
pkg = got.pop("package")
check(pkg["pname"] == "connet" and pkg["version"] == "v1.2.3" and pkg["subPackages"] == ["cmd/connet"], f"package {pkg}")
check(pkg["cgo"] == "0" and "-X main.version=v1.2.3" in pkg["ldflags"], f"package flags {pkg}")
check(pkg["vendorHash"].startswith("sha256-") and pkg["src"] == os.getcwd(), f"package {pkg}")

# flake.nix: packages.<system>.default, nixosModules.default with the four
# modules and the flake's own build as their package.
fl = got.pop("flake")
for system, p in fl["packages"].items():
    check(p == {"system": system, "file": p["file"], "version": "abc1234"} and p["file"].endswith("/nix/package.nix"), f"flake package {system}: {p}")
check(sorted(fl["packages"]) == ["aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"], f"flake systems {sorted(fl['packages'])}")
check(sorted(fl["modules"]) == ["client", "control", "default", "relay", "server"], f"flake modules {fl['modules']}")
check(sorted(p.rsplit("/", 1)[1] for p in fl["defaultImports"]) ==
      ["client-module.nix", "control-server-module.nix", "relay-server-module.nix", "server-module.nix"], f"default imports {fl['defaultImports']}")
for svc, p in fl["defaultPackages"].items():
    check(p == {"default": {"system": "aarch64-linux", "file": p["default"]["file"], "version": "abc1234"}}, f"default module {svc}: {p}")
check(sorted(fl["defaultPackages"]) == ["connet-client", "connet-control", "connet-relay", "connet-server"], f"default module services {fl['defaultPackages']}")

def settings_of(svc):
    argv = json.loads(svc["serviceConfig"]["ExecStart"])
    cfg = argv[argv.index("--config") + 1]
    assert cfg.startswith("/toml:"), cfg
    return argv, json.loads(cfg[len("/toml:"):])

want_argv = {"client": [], "server": ["server"], "control": ["control"], "relay": ["relay"]}
for role, r in got.items():
    svc = r["service"]
    sc = svc["serviceConfig"]
    argv, settings = settings_of(svc)
    check(r["condition"] is True, f"{role}: not enabled")
    # The UDP buffer limits quic-go needs (README: Tuning), overridable.
    check(r["sysctl"] == {"net.core.rmem_max": {"default": 7500000}, "net.core.wmem_max": {"default": 7500000}}, f"{role}: sysctl {r['sysctl']}")
    check(r["options"] == ["enable", "package", "settings"], f"{role}: options {r['options']}")
    check(argv[0] == "/pkg/bin/connet" and argv[1:-2] == want_argv[role], f"{role}: ExecStart {argv}")
    check(sc["DynamicUser"] is True and sc["Restart"] == "on-failure", f"{role}: user/restart")
    cred = f"/run/credentials/connet-{role}.service/"
    # No file named in the settings may stay outside the credentials dir.
    def walk(v, path):
        if isinstance(v, dict):
            for k, x in v.items(): walk(x, path + [k])
        elif isinstance(v, list):
            for i, x in enumerate(v): walk(x, path + [str(i)])
        elif path[-1].endswith("-file"):
            check(v.startswith(cred), f"{role}: {'.'.join(path)} = {v} is not a credential")
    walk(settings, [])
    for c in sc["LoadCredential"]:
        name, src = c.split(":", 1)
        check(src.startswith("/") and not src.startswith(cred), f"{role}: credential {c}")
    role_dir = "CacheDirectory" if role == "client" else "StateDirectory"
    check(sc.get(role_dir) == f"connet-{role}", f"{role}: {role_dir} {sc.get(role_dir)}")

c = settings_of(got["client"]["service"])[1]
check(c["log-level"] == "debug" and c["client"]["server-addr"] == "localhost:19190", f"client settings {c}")
check(c["client"]["sources"]["example"] == {"url": "tcp://:9000"}, f"client sources {c}")
check(sorted(got["client"]["service"]["serviceConfig"]["LoadCredential"]) == sorted([
    "token-file:/run/keys/connet.token", "sources-web-cert-file:/etc/web/cert.pem", "sources-web-key-file:/etc/web/key.pem"]),
    "client credentials")
s = settings_of(got["server"]["service"])[1]["server"]
check(s["ingress"][0]["key-file"].endswith("/ingress-0-key-file") and s["ingress"][0]["addr"] == ":19190", f"server ingress {s}")
check(s["relay-ingress"] == [{"hostports": ["relay.example.com:19191"]}], f"server relay-ingress {s}")
check(got["server"]["warnings"] == [] and len(got["control"]["warnings"]) == 1
      and "clients-tokens" in got["control"]["warnings"][0], f"warnings {got['control']['warnings']}")

# The modules sandbox the service as the unit files do.
for path in glob.glob("packaging/systemd/connet-*.service"):
    role = re.search(r"connet-(\w+)\.service", path).group(1)
    sc = got[role]["service"]["serviceConfig"]
    unit = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            unit.setdefault(k, []).append(v)
    for k, vs in unit.items():
        if k in ("Description", "Documentation", "Wants", "After", "WantedBy", "ExecStart", "LimitNOFILE"):
            continue
        nv = sc.get(k)
        nv = nv if isinstance(nv, list) else [nv]
        norm = lambda v: {True: "yes", False: "no"}.get(v, str(v))
        check(" ".join(norm(v) for v in nv) == " ".join(vs), f"{role}: {k}: unit {vs}, module {nv}")

if errors:
    print("\n".join(errors)); sys.exit(1)
print("Nix evaluates: package (version stamped), flake (packages, nixosModules.default), modules " + ", ".join(sorted(got)) + " (files as credentials, sandbox as the units)")
