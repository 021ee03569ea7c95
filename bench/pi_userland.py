"""The Pi's own userland under emulation: 64-bit Raspberry Pi OS is Debian bookworm for arm64, so flowercam is
installed from aarch64 wheels only into a bookworm arm64 root (mmdebstrap) and run there by qemu-user, once per Pi
CPU profile (Pi 5: Cortex-A76, Pi 4: Cortex-A72); its answers must equal this x86-64 machine's.

What it proves: the install (every wheel aarch64 or pure Python, none built from source) and the answers (the
classify line without its timings, the raw output bytes on varied inputs) on the Pi's OS and CPU architecture.
What it does not: the Pi's speed (the bench below is emulated), the camera, the Coral.

Facts this check is built on (measured here): qemu-user 7.2 shows the host's x86 /proc/cpuinfo inside the arm64
root and LiteRT's CPU detection then crashes (signal 11), so an ARM cpuinfo of the profile is bind-mounted over it;
QEMU's default CPU model (`max`, with SME) runs but gives wrong answers, so QEMU_CPU is pinned to the profile; and
without /sys, XNNPACK cannot read the CPU list and picks other kernels, whose outputs differ from x86-64's by up to
7 quantization steps (answers still equal), so /sys is mounted as on a Pi.

Needs root, qemu-user-static with binfmt_misc and mmdebstrap (.ci/pi_userland.sh installs them).
Usage: python bench/pi_userland.py [--root DIR] [--out bench/results]  ->  pi_userland.{json,md}; exit 1 on any
difference. ``python bench/pi_userland.py probe`` prints the raw outputs (run on both sides).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # machine.py, imported where needed (the probe runs without it)
SAMPLE = ROOT_DIR / "device" / "flowercam" / "samples" / "image_01315.jpg"
SAMPLE_IN_PROBE = Path(os.environ.get("FLOWERCAM_PROBE_SAMPLE", str(SAMPLE)))  # inside the arm64 root: its copy
SUITE = "bookworm"  # Raspberry Pi OS Bookworm's Debian
PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"
PINNED = ("ai-edge-litert", "numpy", "pillow")  # the versions the x86-64 side runs, pinned inside too
# What a Pi shows in /proc/cpuinfo, one entry per CPU (BogoMIPS, Features, CPU implementer ... revision).
PROFILES = {
    "Pi 5 (Cortex-A76)": ("cortex-a76", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                          "asimdrdm lrcpc dcpop asimddp", "0x4", "0xd0b", "1", "Raspberry Pi 5 Model B Rev 1.0"),
    "Pi 4 (Cortex-A72)": ("cortex-a72", "fp asimd evtstrm crc32 cpuid", "0x0", "0xd08", "3",
                          "Raspberry Pi 4 Model B Rev 1.5"),
}
UNTIMED = ("latency_ms", "peak_rss_mb")  # what differs between any two runs


def probe() -> dict:
    """The bundled model on varied inputs (the sample photo through the device's preprocessing, black, white, seeded
    noise, a gradient), with the kernels users run and with TFLite's reference kernels: per input and kernel set,
    the raw uint8 outputs and the answer (the label, or "uncertain" by the model's rule)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from flowercam.model.classifier import BUNDLED_MODEL
    from flowercam.model.scores import dequantize, is_uncertain
    from flowercam.model.sidecar import read_sidecar

    sidecar = read_sidecar(BUNDLED_MODEL)
    size = sidecar.preprocess.size
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    inputs = {
        "sample photo": sidecar.preprocess(SAMPLE_IN_PROBE),
        "black": np.zeros((size, size, 3), np.uint8),
        "white": np.full((size, size, 3), 255, np.uint8),
        "noise (seed 0)": np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8),
        "gradient": np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[::-1][None, :]), -1)
        .astype(np.uint8),
    }
    answers: dict = {}
    for kernels, resolver in (("default", OpResolverType.AUTO), ("reference", OpResolverType.BUILTIN_REF)):
        interpreter = Interpreter(model_path=str(BUNDLED_MODEL), num_threads=1,
                                  experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        details = interpreter.get_output_details()
        for name, image in inputs.items():
            interpreter.set_tensor(index, image[np.newaxis])
            interpreter.invoke()
            outputs = [interpreter.get_tensor(o["index"]).ravel() for o in details]
            probs = dequantize(outputs[0], *details[0]["quantization"])
            similarity = float(dequantize(outputs[1], *details[1]["quantization"])[0])
            top = int(probs.argmax())
            uncertain = bool(is_uncertain(probs[top], similarity, sidecar.uncertain_below, sidecar.similarity_below))
            answers.setdefault(kernels, {})[name] = {
                "input_sha256": hashlib.sha256(image.tobytes()).hexdigest()[:16],
                "outputs_sha256": hashlib.sha256(b"".join(o.tobytes() for o in outputs)).hexdigest()[:16],
                "answer": "uncertain" if uncertain else sidecar.labels[top],
                "outputs": [o.tolist() for o in outputs]}
    return answers


def _steps(a: dict, b: dict) -> int:
    """The largest difference between two probes' raw outputs, in quantization steps."""
    return max(max(abs(x - y) for x, y in zip(p, q)) for p, q in zip(a["outputs"], b["outputs"]))



def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def _cpuinfo(profile: tuple) -> str:
    _, features, variant, part, revision, model = profile
    cpu = "".join(f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
                  f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n\n"
                  for i in range(os.cpu_count() or 1))
    return cpu + f"Revision\t: 0000\nSerial\t\t: 0000000000000000\nModel\t\t: {model}\n"


class Userland:
    """A bookworm arm64 root and commands run in it by qemu-user, with a profile's cpuinfo and CPU model."""

    def __init__(self, root: Path):
        self.root = root

    def ensure(self) -> float:
        """Make the root with mmdebstrap unless it is there; returns the seconds it took (0 when reused)."""
        if (self.root / "usr" / "bin" / "python3").exists():
            return 0.0
        start = time.monotonic()
        shutil.rmtree(self.root, ignore_errors=True)
        done = _run(["mmdebstrap", "--mode=root", "--arch=arm64", "--variant=minbase", f"--include={PACKAGES}",
                     SUITE, str(self.root)])
        if done.returncode:
            raise SystemExit(f"mmdebstrap failed: {done.stderr.strip().splitlines()[-1:]}")
        return time.monotonic() - start

    def run(self, command: str, profile: tuple) -> subprocess.CompletedProcess:
        """``command`` (sh) inside the root, in a private mount namespace: /proc, the profile's cpuinfo over it,
        /sys, the host's resolv.conf; QEMU_CPU set to the profile."""
        cpuinfo = self.root / "probe" / f"cpuinfo-{profile[0]}"
        cpuinfo.write_text(_cpuinfo(profile))
        r = self.root
        setup = (f"mount -t proc proc {r}/proc && mount --bind {cpuinfo} {r}/proc/cpuinfo && "
                 f"mount -t sysfs sys {r}/sys && "
                 f"touch {r}/etc/resolv.conf && mount --bind /etc/resolv.conf {r}/etc/resolv.conf")
        variables = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                     "QEMU_CPU": profile[0], "PIP_CERT": "/probe/ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                     "FLOWERCAM_PROBE_SAMPLE": f"/probe/{SAMPLE.name}"}
        inner = " ".join(["env", "-i", *(f"{k}={v}" for k, v in variables.items()), "sh", "-c",
                          _quote(command)])
        return _run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     f"{setup} && chroot {r} {inner}"])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _classify_line(stdout: str) -> dict:
    line = json.loads(stdout.strip().splitlines()[-1])
    line["path"] = Path(line["path"]).name
    return {k: v for k, v in line.items() if k not in UNTIMED}


def host_answers() -> dict:
    """This machine's answers: the classify line and the probe, with the same package."""
    flowercam = Path(sys.executable).with_name("flowercam")
    classify = _run([str(flowercam), "classify", "--json", str(SAMPLE)])
    if classify.returncode:
        raise SystemExit(f"x86-64 classify failed: {classify.stderr.strip()}")
    return {"classify": _classify_line(classify.stdout), "probe": probe()}


def install(userland: Userland, profile: tuple) -> dict:
    """flowercam's wheel and its requirements into a fresh venv in the root, binary wheels only; the wheels pip
    took (from its --report) must all be aarch64 or pure Python."""
    probe_dir = userland.root / "probe"
    for old in probe_dir.glob("flowercam-*.whl"):
        old.unlink()
    built = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                  str(probe_dir), str(ROOT_DIR)])
    if built.returncode:
        raise SystemExit(f"building flowercam's wheel failed: {built.stderr.strip()}")
    wheel = next(probe_dir.glob("flowercam-*.whl")).name
    (probe_dir / "constraints.txt").write_text("".join(f"{p}=={metadata.version(p)}\n" for p in PINNED))
    start = time.monotonic()
    done = userland.run(f"rm -rf /opt/venv && python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet "
                        f"--only-binary=:all: -c /probe/constraints.txt --report /probe/report.json /probe/{wheel}",
                        profile)
    seconds = time.monotonic() - start
    if done.returncode:
        raise SystemExit(f"pip install in the arm64 root failed: {done.stderr.strip()[-600:]}")
    report = json.loads((probe_dir / "report.json").read_text())
    wheels = sorted(item["download_info"]["url"].rsplit("/", 1)[-1] for item in report["install"])
    foreign = [w for w in wheels if not (w.endswith("_aarch64.whl") or w.endswith("-none-any.whl"))]
    if foreign:
        raise SystemExit(f"not an aarch64 or pure-Python wheel: {', '.join(foreign)}")
    return {"seconds": round(seconds, 1), "wheels": wheels,
            "aarch64": [w for w in wheels if w.endswith("_aarch64.whl")]}


def check_profile(userland: Userland, profile: tuple, host: dict) -> dict:
    """classify, the probe, info and a short bench inside the root under one CPU profile, against ``host``."""
    timings, answers = {}, {}
    steps = {"classify": f"/opt/venv/bin/flowercam classify --json /probe/{SAMPLE.name}",
             "probe": "/opt/venv/bin/python /probe/pi_userland.py probe",
             "info": "/opt/venv/bin/flowercam info",
             "bench": "/opt/venv/bin/flowercam bench --runs 5 --warmup 1 --json"}
    for name, command in steps.items():
        start = time.monotonic()
        done = userland.run(command, profile)
        timings[name] = round(time.monotonic() - start, 1)
        if done.returncode:
            return {"ok": False, "failed": f"{name} exited {done.returncode}: {done.stderr.strip()[-400:]}",
                    "seconds": timings}
        answers[name] = done.stdout
    classify, raw = _classify_line(answers["classify"]), json.loads(answers["probe"])
    bench = json.loads(answers["bench"].strip().splitlines()[-1])
    info = dict(line.split(": ", 1) for line in answers["info"].splitlines()
                if line.startswith(("runtime:", "sha256:", "edgetpu:")))
    differences = [f"classify: {k}" for k in sorted(set(classify) | set(host["classify"]))
                   if classify.get(k) != host["classify"].get(k)]
    differences += [f"reference kernels' bytes: {k}" for k, v in host["probe"]["reference"].items()
                    if raw["reference"][k]["outputs_sha256"] != v["outputs_sha256"]]
    differences += [f"answer: {k}" for k, v in host["probe"]["default"].items()
                    if raw["default"][k]["answer"] != v["answer"]]
    steps = {k: _steps(v, raw["default"][k]) for k, v in host["probe"]["default"].items()}
    return {"ok": not differences, "differences": differences, "seconds": timings, "classify": classify,
            "probe": _without_outputs(raw), "steps": steps, "info": info,
            "emulated_latency_ms": bench.get("latency_ms", {}).get("mean")}


def _without_outputs(probed: dict) -> dict:
    return {kernels: {k: {f: v for f, v in r.items() if f != "outputs"} for k, r in by.items()}
            for kernels, by in probed.items()}


def check(root: Path) -> dict:
    """The whole check; the data for pi_userland.json."""
    from machine import machine_info

    start = time.monotonic()
    userland = Userland(root)
    made = userland.ensure()
    probe_dir = root / "probe"
    probe_dir.mkdir(exist_ok=True)
    shutil.copy(SAMPLE, probe_dir / SAMPLE.name)
    shutil.copy(__file__, probe_dir / "pi_userland.py")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", probe_dir / "ca.crt")
    host = host_answers()
    x86_steps = {k: _steps(v, host["probe"]["reference"][k]) for k, v in host["probe"]["default"].items()}
    first = next(iter(PROFILES.values()))
    installed = install(userland, first)
    profiles = {}
    for name, profile in PROFILES.items():
        print(f"{name}: QEMU_CPU={profile[0]} ...", file=sys.stderr, flush=True)
        profiles[name] = check_profile(userland, profile, host)
    qemu = _run(["qemu-aarch64-static", "--version"]).stdout.splitlines()[:1]
    os_release = (root / "etc" / "os-release").read_text()
    pretty = next((line.split("=", 1)[1].strip('"') for line in os_release.splitlines()
                   if line.startswith("PRETTY_NAME=")), SUITE)
    return {"machine": machine_info(), "userland": pretty, "qemu": qemu[0] if qemu else "",
            "root_seconds": round(made, 1), "install": installed, "profiles": profiles, "x86_steps": x86_steps,
            "host": {"classify": host["classify"], "probe": _without_outputs(host["probe"])},
            "total_seconds": round(time.monotonic() - start, 1),
            "ok": all(p["ok"] for p in profiles.values())}


def render(data: dict) -> str:
    """pi_userland.md from pi_userland.json."""
    from machine import header_markdown

    root = f"{data['root_seconds']:.0f} s to make it" if data["root_seconds"] else "made by an earlier run"
    host, n = data["host"]["probe"], len(data["host"]["probe"]["default"])
    lines = ["# The Pi's userland under emulation: install and answers on arm64\n", header_markdown(data["machine"]),
             f"\n{data['userland']} (arm64, mmdebstrap minbase; {root}) run by {data['qemu']} user-mode emulation. "
             f"flowercam installed from binary wheels only in {data['install']['seconds']:.0f} s: "
             f"{len(data['install']['wheels'])} wheels, the compiled ones all aarch64 "
             f"({', '.join(w.split('-')[0] for w in data['install']['aarch64'])}), the rest pure Python. "
             f"The whole check took {data['total_seconds']:.0f} s (`.ci/pi_userland.sh` runs it in CI).\n",
             "This proves that flowercam installs and answers the same on the Pi's OS and CPU architecture. It "
             "does not measure the Pi's speed (the latency below is emulated, far slower than a Pi), the camera or "
             "the Coral.\n",
             "| CPU profile (QEMU_CPU, /proc/cpuinfo) | `classify --json` (less timings) equals x86-64 | answers "
             f"equal ({n} inputs) | reference kernels: bytes equal | default kernels: largest output difference | "
             "Edge TPU check | classify, probe, info, bench (s) | emulated latency |",
             "|---|---|---|---|---|---|---|---|"]
    for name, p in data["profiles"].items():
        if "classify" not in p:
            lines.append(f"| {name} | **failed**: {p['failed']} | | | | | | |")
            continue
        same = "yes" if not [d for d in p["differences"] if d.startswith("classify")] else "**no**"
        answers = sum(p["probe"]["default"][k]["answer"] == v["answer"] for k, v in host["default"].items())
        exact = sum(p["probe"]["reference"][k]["outputs_sha256"] == v["outputs_sha256"]
                    for k, v in host["reference"].items())
        s = p["seconds"]
        lines.append(f"| {name} | {same} ({p['classify']['label']} {p['classify']['score']:.1%}) | {answers} of {n} "
                     f"| {exact} of {n} | {max(p['steps'].values())} steps | {p['info'].get('edgetpu', '')} | "
                     f"{s['classify']:.0f}, {s['probe']:.0f}, {s['info']:.0f}, {s['bench']:.0f} | "
                     f"{p['emulated_latency_ms']:.0f} ms |")
    worst = max((max(p["steps"].values()) for p in data["profiles"].values() if "steps" in p), default=None)
    kernels = ("byte for byte the same as x86-64's too" if worst == 0 else
               f"within {worst} quantization steps (1/256 of probability) of x86-64's; x86-64's own differ from "
               f"the reference kernels' by up to {max(data['x86_steps'].values())}")
    lines += ["", "TFLite's reference kernels give the same bytes on both architectures: the emulated CPU computes the "
              f"model exactly. The optimized kernels users run (XNNPACK) give outputs {kernels}. The check requires "
              "the same `classify` line, the same answers (the label, or \"uncertain\" by the model's rule) and the "
              "reference kernels' bytes.", "",
              "| input | answer on x86-64 | " + " | ".join(f"answer, {k}" for k in data["profiles"]) + " | "
              + " | ".join(f"output difference, {k}" for k in data["profiles"]) + " |",
              "|---" * (2 + 2 * len(data["profiles"])) + "|"]
    for key, x86 in host["default"].items():
        answers = [p.get("probe", {}).get("default", {}).get(key, {}).get("answer", "–")
                   for p in data["profiles"].values()]
        steps = [str(p.get("steps", {}).get(key, "–")) for p in data["profiles"].values()]
        lines.append(f"| {key} | {x86['answer']} | " + " | ".join(answers) + " | " + " | ".join(steps) + " |")
    lines.append(f"\nResult: {'the same answers everywhere' if data['ok'] else '**answers differ**'}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["probe"]:
        print(json.dumps(probe()))
        return
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/var/tmp/flowercam-pi-root"),
                        help="the arm64 root (made when missing, reused otherwise)")
    parser.add_argument("--out", type=Path, default=ROOT_DIR / "bench" / "results")
    args = parser.parse_args()
    from machine import write_results

    data = check(args.root)
    write_results(args.out, "pi_userland", data, render)
    if not data["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
