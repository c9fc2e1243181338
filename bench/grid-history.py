#!/usr/bin/env python3
"""A `git fast-import` stream for bench/coldstart.sh: a grid's main that has folded
TASKS tasks, built by script rather than by running them (docs/ARCHITECTURE.md §10).

    grid-history.py history PARENT TASKS DAYS   main's history on top of commit PARENT
    grid-history.py results PREFIX COUNT         COUNT result refs for queued tasks PREFIX-<i>

History: batches of 1,000 tasks, each one submission commit (dgrid's queue
layout) then folds of FOLD (200) tasks each moving them to tasks/completed/ (one in
ten to tasks/failed/, exit 1) with their result record beside them, as dgrid's
fold writes them; nodes/<node>.json refreshed every 20 folds. Records finish
evenly over the last DAYS days, so `dgrid archive --older-than 7d` takes most.
"""
import json, subprocess, sys, time

out = sys.stdout.buffer
FOLD = 200
NODES = [f"w{i}" for i in range(1, 9)]


def blob(path, data):
    data = data.encode()
    out.write(b"M 100644 inline " + path.encode() + b"\n")
    out.write(b"data %d\n" % len(data) + data + b"\n")


def commit(ref, message, when, parent=None):
    message = message.encode()
    out.write(b"commit " + ref.encode() + b"\n")
    out.write(b"committer dgrid <dgrid@localhost> %d +0000\n" % when)
    out.write(b"data %d\n" % len(message) + message + b"\n")
    if parent:
        out.write(b"from " + parent.encode() + b"\n")


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def task(task_id):
    return json.dumps({"task_id": task_id, "script": f"echo result {task_id}", "timeout_seconds": 60,
                       "submitter": "bench", "created_at": "2026-01-01T00:00:00Z"}, indent=2) + "\n"


def record(task_id, node, exit_code, started, finished):
    return json.dumps({
        "task_id": task_id, "node_id": node, "exit_code": exit_code,
        "stdout": f"result {task_id}\n", "stderr": "" if exit_code == 0 else "failed on purpose\n",
        "timestamp": iso(finished), "status": "completed" if exit_code == 0 else "failed",
        "started_at": iso(started), "finished_at": iso(finished), "duration_ms": int((finished - started) * 1000),
        "timed_out": False, "oom_killed": False, "cpu_ms": 3, "max_rss_bytes": 1200000,
        "stdout_bytes": len(task_id) + 8, "stdout_truncated": False, "stderr_bytes": 0, "stderr_truncated": False,
        "image_digest": "sha256:" + "ab" * 32, "attempt": 1, "worker_version": "dgrid 0.1",
    }, indent=2) + "\n"


def history(parent, tasks, days):
    now = int(time.time())
    start = now - days * 86400
    parent_used = False
    done = 0
    folds = 0
    while done < tasks:
        batch = [f"job-{i:06d}" for i in range(done, min(tasks, done + 1000))]
        when = start + int(done / tasks * days * 86400)
        commit("refs/heads/main", f"submit {len(batch)} tasks", when, None if parent_used else parent)
        parent_used = True
        for task_id in batch:
            blob(f"tasks/queue/normal/{int(task_id[4:]) % 16}/{task_id}.json", task(task_id))
        for first in range(0, len(batch), FOLD):
            group = batch[first:first + FOLD]
            finished = start + int((done + first + len(group)) / tasks * days * 86400)
            commit("refs/heads/main", f"dgrid fold: folded {len(group)} finished", finished)
            for task_id in group:
                number = int(task_id[4:])
                node = NODES[number % len(NODES)]
                exit_code = 1 if number % 10 == 9 else 0
                folder = "completed" if exit_code == 0 else "failed"
                out.write(f"D tasks/queue/normal/{number % 16}/{task_id}.json\n".encode())
                blob(f"tasks/{folder}/{node}-{task_id}.json", task(task_id))
                blob(f"tasks/{folder}/{node}-{task_id}.json.log", record(task_id, node, exit_code, finished - 2, finished))
            folds += 1
            if folds % 20 == 0:
                for node in NODES:
                    blob(f"nodes/{node}.json", json.dumps({"node_id": node, "status": "idle", "slots": 2,
                                                           "last_heartbeat": iso(finished)}) + "\n")
        done += len(batch)


def results(prefix, count, key=None):
    """Published results of node `bench`, each signed as a worker signs it (OpenSSH's
    ssh-keygen with the node key `key`, namespace dgrid-result): folds verify them."""
    now = int(time.time())
    for i in range(count):
        task_id = f"{prefix}-{i}"
        commit(f"refs/dgrid/results/{task_id}", f"completed {task_id} on bench", now)
        data = record(task_id, "bench", 0, now - 1, now)
        blob("result.json", data)
        if key:
            signed = subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-n", "dgrid-result", "-f", key],
                                    input=data.encode(), capture_output=True, check=True)
            blob("result.json.sig", signed.stdout.decode())
        blob("task.json", task(task_id))


if __name__ == "__main__":
    if sys.argv[1] == "history":
        history(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "results":
        results(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        sys.exit("usage: grid-history.py history PARENT TASKS DAYS | results PREFIX COUNT [NODE_KEY]")
    out.write(b"done\n")
