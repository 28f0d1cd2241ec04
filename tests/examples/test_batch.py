#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of examples/batch/: the job-array script without a scheduler, and on a one-node Slurm
cluster started here (tools/local_slurm.py).

Usage: test_batch.py local|slurm

Environment: as test_examples.py (tests/examples/meson.build), whose helpers this uses. The inputs
are four 64x48 clips of 6 frames, the second with a style that is no image. On this machine
there are no GPUs: a stand-in nvidia-smi (written here, first on PATH) lists two GPUs whose UUIDs
are the UUID of the only Vulkan device (lavapipe, read from the element's device-uuid property) in
two spellings, so that the job script's mapping from the allocated GPU to the element's device-id
is run and checked; the Slurm test gives the node two GPUs in GRES (fake devices, when root) so
that Slurm allocates them and sets CUDA_VISIBLE_DEVICES as on a GPU node.
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import test_examples as ex
from test_examples import Failure, check

sys.path.insert(0, os.path.join(ex.ROOT, "tools"))
import local_slurm  # noqa: E402

BATCH = os.path.join(ex.EXAMPLES, "batch")
JOB = os.path.join(BATCH, "stylize-array.sh")
SUBMIT = os.path.join(BATCH, "submit.sh")
SIZE = "64x48"
FRAMES = 6
NAMES = ["a", "b", "c", "d"]  # b has the bad style
PROPS = {"ST_PROPS": "processing-size=64"}
SCHEDULER_VARS = ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID", "SLURM_JOB_GPUS",
                  "JOB_COMPLETION_INDEX", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
                  "ST_DEVICE_ID", "ST_ARRAY_OFFSET", "ST_EXAMPLES_DIR"]
ex.TIMEOUT = 900  # a whole list on a loaded 2-core machine
# lavapipe compiles a kernel when it first runs, inside the element's wait for the GPU: the first
# frames of a cold pipeline cache took over 120 s (the element's limit) on this 2-core machine
# with other tests beside it
os.environ.setdefault("ST_GPU_TIMEOUT_MS", "900000")


def element_uuid():
    """The UUID of the device the element opens by itself (its read-only device-uuid)."""
    p = ex.run([ex.GST_LAUNCH, "-v", "videotestsrc", "num-buffers=1", "!",
                "video/x-raw,width=64,height=48", "!", "styletransfer", f"style={ex.STYLE_A}",
                "processing-size=64", "!", "fakesink"])
    m = re.search(r"device-uuid = ([0-9a-f-]{36})\n", p.stdout)
    check(m is not None, "the element reports its device's UUID")
    return m.group(1)


def fake_nvidia_smi(uuid):
    """Writes OUT/bin/nvidia-smi listing GPUs 0 and 1 (lavapipe's UUID, lower and upper case
    without dashes); returns the bin directory and the two UUIDs as nvidia-smi prints them."""
    bindir = ex.out("bin")
    os.makedirs(bindir, exist_ok=True)
    gpus = [f"GPU-{uuid}", "GPU-" + uuid.replace("-", "").upper()]
    write_gpus(gpus)
    path = os.path.join(bindir, "nvidia-smi")
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
# stands in for NVIDIA's nvidia-smi (written by tests/examples/test_batch.py)
if [ "$*" != "--query-gpu=index,uuid,pci.bus_id --format=csv,noheader" ]; then
  echo "nvidia-smi (test stand-in): unexpected arguments: $*" >&2
  exit 1
fi
cat "{bindir}/gpus.csv"
""")
    os.chmod(path, 0o755)
    return bindir, gpus


def write_gpus(gpus):
    with open(ex.out("bin/gpus.csv"), "w") as f:
        for i, g in enumerate(gpus):
            f.write(f"{i}, {g}, 00000000:{0x17 + i:02X}:00.0\n")


def make_inputs():
    """The four clips, a style that is no image and the list (relative paths, the bad style on
    the second entry, a comment and a blank line); returns the list's path."""
    first = ex.make_clip(ex.out("a.mp4"), FRAMES, SIZE)
    for n in NAMES[1:]:
        shutil.copy(first, ex.out(f"{n}.mp4"))
    with open(ex.out("bad-style.png"), "w") as f:
        f.write("not an image\n")
    path = ex.out("list.txt")
    with open(path, "w") as f:
        f.write("# inputs of the batch test\na.mp4\nb.mp4\tbad-style.png\n\nc.mp4\nd.mp4\n")
    return path


def log_of(outdir, name):
    with open(os.path.join(outdir, "logs", f"{name}.log")) as f:
        return f.read()


def last_result(outdir, name):
    return log_of(outdir, name).rstrip("\n").rsplit("\n", 1)[-1]


def check_outputs(outdir, good, bad):
    """The good outputs play like their inputs; each bad one failed with the element's error
    in its log and left no file, not even a part file."""
    for n in good:
        ex.check_video(os.path.join(outdir, f"{n}.mp4"), FRAMES, SIZE, like=ex.out(f"{n}.mp4"))
        check(last_result(outdir, n).startswith("done: "), f"{n}.log ends with done")
    for n in bad:
        check(not os.path.exists(os.path.join(outdir, f"{n}.mp4")), f"no {n}.mp4")
        check(not os.path.exists(os.path.join(outdir, f".{n}.part.mp4")), f"no .{n}.part.mp4")
        log = log_of(outdir, n)
        check("ERROR: from element /GstPipeline:pipeline0/GstStyleTransfer:styletransfer0: "
              'Could not decode style image "' in log, f"{n}.log has the element's error")
        check(last_result(outdir, n).startswith("failed: "), f"{n}.log ends with failed")


def mtimes(outdir, names):
    return {n: os.stat(os.path.join(outdir, f"{n}.mp4")).st_mtime_ns for n in names}


def check_redone_only(outdir, before, redone):
    """After a second run: the outputs of `before` untouched and their tasks skipped; `redone`
    done."""
    check(mtimes(outdir, before) == before, f"{', '.join(before)} were not written again")
    for n in before:
        check(last_result(outdir, n).startswith("skipped: "), f"{n}.log ends with skipped")
    check_outputs(outdir, redone, [])


def fix_bad_style():
    shutil.copy(ex.STYLE_B, ex.out("bad-style.png"))


# ---- without a scheduler -----------------------------------------------------------------------


def test_local():
    uuid = element_uuid()
    bindir, gpus = fake_nvidia_smi(uuid)
    lst = make_inputs()
    outdir = ex.out("local")
    p = ex.run([JOB, "--check", lst, outdir, ex.STYLE_A])
    check(p.stdout.strip() == "4", "--check counts 4 entries")
    bad_list = ex.out("bad-list.txt")
    with open(bad_list, "w") as f:
        f.write("a.mp4\nsub/a.mp4\nb.mp4\tmissing.png\n")
    p = ex.run([JOB, "--check", bad_list, outdir], expect=1)
    for text in ["entries 0 and 1 are both written to a.mp4", "/sub/a.mp4\" does not exist",
                 "/missing.png\" does not exist", f"entry 0 ({ex.OUT}/a.mp4) has no style"]:
        check(text in p.stderr, f"--check says: {text}")
    ex.run([JOB, lst], expect=2)

    p = ex.run([JOB, lst, outdir, ex.STYLE_A], PROPS, expect=1)
    check("4 entries, 1 failed" in p.stdout, "every entry was tried, one failed")
    check_outputs(outdir, ["a", "c", "d"], ["b"])
    check("device: no GPU allocated" in log_of(outdir, "a") and
          f"device-uuid = {uuid}" in log_of(outdir, "a"),
          "no GPU allocated: the element chose the device and the log says so")

    done = mtimes(outdir, ["a", "c", "d"])
    ex.run([JOB, lst, outdir, ex.STYLE_A], PROPS, expect=1)
    check_redone_only(outdir, done, [])
    check_outputs(outdir, [], ["b"])

    # a Kubernetes Indexed Job: JOB_COMPLETION_INDEX picks the entry (1: b, its style fixed)
    fix_bad_style()
    b_log = log_of(outdir, "b")
    ex.run([JOB, lst, outdir, ex.STYLE_A], dict(PROPS, JOB_COMPLETION_INDEX="1"))
    check(log_of(outdir, "b").startswith(b_log), "b's log keeps the earlier attempts")
    check_redone_only(outdir, done, ["b"])
    ex.run([JOB, lst, outdir, ex.STYLE_A], dict(PROPS, JOB_COMPLETION_INDEX="4"), expect=1)

    # the allocated GPU selects the device: by index through nvidia-smi, or a UUID as it is
    one = ex.out("one.txt")
    with open(one, "w") as f:
        f.write(f"{ex.out('a.mp4')}\n")
    path = f"{bindir}:{os.environ['PATH']}"
    cases = [({"CUDA_VISIBLE_DEVICES": "1,0"}, f"device: GPU 1 (CUDA_VISIBLE_DEVICES) is {gpus[1]}"),
             ({"GPU_DEVICE_ORDINAL": "0"}, f"device: GPU 0 (GPU_DEVICE_ORDINAL) is {gpus[0]}"),
             ({"CUDA_VISIBLE_DEVICES": gpus[0]}, f"CUDA_VISIBLE_DEVICES={gpus[0]}, a UUID"),
             ({"ST_DEVICE_ID": uuid, "CUDA_VISIBLE_DEVICES": "7"}, f"ST_DEVICE_ID={uuid}")]
    if shutil.which("nvidia-smi") is None:
        cases.append(({"CUDA_VISIBLE_DEVICES": "0", "PATH": os.environ["PATH"]},
                      "GPU 0 allocated (CUDA_VISIBLE_DEVICES) but no nvidia-smi"))
    for i, (env, says) in enumerate(cases):
        d = ex.out(f"device-{i}")
        ex.run([JOB, one, d, ex.STYLE_A], {**PROPS, "PATH": path, **env})
        log = log_of(d, "a")
        check(says in log and f"device-uuid = {uuid}" in log, f"{env}: the log says: {says}")
        check_outputs(d, ["a"], [])
    # nvidia-smi's UUID for GPU 1 is no Vulkan device here: the element names it and fails
    write_gpus([gpus[0], "GPU-00112233-4455-6677-8899-aabbccddeeff"])
    d = ex.out("device-unknown")
    ex.run([JOB, one, d, ex.STYLE_A], dict(PROPS, PATH=path, CUDA_VISIBLE_DEVICES="1"), expect=1)
    check('Could not open Vulkan device "GPU-00112233-4455-6677-8899-aabbccddeeff"' in
          log_of(d, "a"), "an allocated GPU that Vulkan does not have: the element's error")
    check(not os.path.exists(os.path.join(d, "a.mp4")), "and no output")

    test_killed()


def test_killed():
    """A task killed halfway (SIGKILL: no chance to clean up; SIGTERM: what scancel and time
    limits send) leaves no file under the output name; the next run does the file."""
    clip = ex.make_clip(ex.out("long.mp4"), 300, SIZE)
    lst = ex.out("long.txt")
    with open(lst, "w") as f:
        f.write("long.mp4\n")
    outdir = ex.out("killed")
    part = os.path.join(outdir, ".long.part.mp4")
    log = os.path.join(outdir, "logs", "long.log")
    for sig in (signal.SIGKILL, signal.SIGTERM):
        start = os.path.getsize(log) if os.path.exists(log) else 0
        print(f"$ {JOB} {lst} {outdir} {ex.STYLE_A} &", flush=True)
        proc = subprocess.Popen([JOB, lst, outdir, ex.STYLE_A], env=dict(os.environ, **PROPS),
                                start_new_session=True)
        deadline = time.time() + ex.TIMEOUT

        def playing():  # this attempt's pipeline has prerolled: the element is stylizing
            if not os.path.exists(log):
                return False
            with open(log) as f:
                f.seek(start)
                return "Setting pipeline to PLAYING" in f.read()

        while time.time() < deadline and proc.poll() is None and not playing():
            time.sleep(0.1)
        check(proc.poll() is None, f"the task is still running when it gets {sig.name}")
        os.killpg(proc.pid, sig)
        status = proc.wait(60)
        check(not os.path.exists(os.path.join(outdir, "long.mp4")),
              f"killed by {sig.name} (status {status}): no long.mp4")
        if sig == signal.SIGTERM:
            check(status == 143 and not os.path.exists(part), "SIGTERM: the part file removed")
    ex.run([JOB, lst, outdir, ex.STYLE_A], PROPS)
    ex.check_video(os.path.join(outdir, "long.mp4"), 300, SIZE, like=clip)


# ---- on Slurm ----------------------------------------------------------------------------------


def wait_for(cluster, ids, timeout=1200):
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = cluster.run("squeue", "-h", "-r", "-j", ",".join(ids), "-o", "%i %T").strip()
        if not left:
            return
        time.sleep(2)
    raise Failure(f"jobs {ids} not finished within {timeout} s: {left}")


def task_states(cluster, ids):
    """{(array job id, task id): (state, exit code)} of every task."""
    states = {}
    for job in ids:
        for line in cluster.run("scontrol", "show", "job", "-o", job).splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            states[(f["ArrayJobId"], int(f["ArrayTaskId"]))] = (f["JobState"], f["ExitCode"])
    return states


def submit(cluster, lst, outdir, env):
    p = subprocess.run([SUBMIT, lst, outdir, ex.STYLE_A], env=dict(cluster.env, **env),
                       capture_output=True, text=True, timeout=120)
    sys.stdout.write(f"$ {SUBMIT} {lst} {outdir} {ex.STYLE_A}\n{p.stdout}{p.stderr}")
    check(p.returncode == 0, f"submit.sh exit status {p.returncode}")
    arrays = re.findall(r"job array (\d+): entries (\d+)-(\d+)", p.stdout)
    check([a[1:] for a in arrays] == [("0", "2"), ("3", "3")],
          "4 entries split into arrays of MaxArraySize 3 and 1")
    check(f"squeue -r -j {arrays[0][0]},{arrays[1][0]}" in p.stdout, "it prints how to watch")
    return [a[0] for a in arrays]


def can_mknod():
    """Whether the fake GPU devices can be made (root, and allowed in a container)."""
    probe = ex.out("mknod-probe")
    try:
        os.mknod(probe, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        os.unlink(probe)
        return True
    except OSError as e:
        print(f"no GPUs in GRES: cannot make device nodes ({e}); the tasks get no GPU")
        return False


def test_slurm():
    missing = local_slurm.missing_binaries()
    if missing:
        print(f"SKIP: Slurm is not installed ({', '.join(missing)} missing; tools/setup-debian.sh "
              "installs slurmctld, slurmd and slurm-client)")
        return 77
    uuid = element_uuid()
    bindir, gpus = fake_nvidia_smi(uuid)
    lst = make_inputs()
    outdir = ex.out("slurm-out")
    gpu_count = 2 if can_mknod() else 0
    cluster = local_slurm.Cluster(ex.out("slurm"), cpus=2, gpus=gpu_count, max_array_size=3)
    env = dict(PROPS, PATH=f"{bindir}:{os.environ['PATH']}", ST_ARRAY_PARALLEL="2",
               ST_GRES="gpu:1" if gpu_count else "")
    pids = {}
    try:
        cluster.start()
        pids = cluster.daemon_pids()
        check(sorted(pids) == ["slurmctld", "slurmd"], f"slurmctld and slurmd run: {pids}")
        print(cluster.run("sinfo", "-N", "-o", "%N %T %c %G"))
        ids = submit(cluster, lst, outdir, env)
        wait_for(cluster, ids)
        states = task_states(cluster, ids)
        print(states)
        want = {(ids[0], 0): ("COMPLETED", "0:0"), (ids[0], 1): ("FAILED", "1:0"),
                (ids[0], 2): ("COMPLETED", "0:0"), (ids[1], 0): ("COMPLETED", "0:0")}
        check(states == want, "3 tasks completed, the one with the bad style failed (exit 1)")
        check_outputs(outdir, ["a", "c", "d"], ["b"])
        with open(os.path.join(outdir, "logs", f"slurm-{ids[0]}_1.out")) as f:
            check(f.read().startswith("failed: "), "the task's Slurm log has its result")
        for n in ["a", "c", "d"]:
            log = log_of(outdir, n)
            check(f"device-uuid = {uuid}" in log, f"{n}: the element ran on {uuid}")
            if gpu_count:
                m = re.search(r"device: GPU (\d) \(CUDA_VISIBLE_DEVICES\) is (\S+) ", log)
                check(m is not None and m.group(2) == gpus[int(m.group(1))],
                      f"{n}: Slurm's GPU mapped to its UUID ({m.group(0) if m else 'none'})")

        done = mtimes(outdir, ["a", "c", "d"])
        fix_bad_style()
        ids = submit(cluster, lst, outdir, env)
        wait_for(cluster, ids)
        states = task_states(cluster, ids)
        check(all(s == ("COMPLETED", "0:0") for s in states.values()) and len(states) == 4,
              f"the resubmitted tasks all completed: {states}")
        check_redone_only(outdir, done, ["b"])
    finally:
        cluster.stop()
        check(not any(local_slurm.running(p) for p in pids.values()), "the daemons have stopped")
    return 0


TESTS = {"local": test_local, "slurm": test_slurm}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        print(f"usage: {sys.argv[0]} {{{','.join(TESTS)}}}", file=sys.stderr)
        return 2
    for var in SCHEDULER_VARS:
        os.environ.pop(var, None)
    shutil.rmtree(ex.OUT, ignore_errors=True)
    os.makedirs(ex.OUT)
    try:
        status = TESTS[sys.argv[1]]() or 0
    except (Failure, subprocess.TimeoutExpired, local_slurm.SlurmError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    if status == 0:
        print("PASS")
    return status


if __name__ == "__main__":
    sys.exit(main())
