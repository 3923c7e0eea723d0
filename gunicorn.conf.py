"""gunicorn settings used by `make run` and the container: server-wide metrics across workers.

Workers are forked after on_starting, so they inherit PROMETHEUS_MULTIPROC_DIR before they
import the application (keep preload_app off: a preloaded app would count in-process).
"""
from observability import multiprocess


def on_starting(server):
    path = multiprocess.prepare()
    server.log.info("metrics of all workers in %s", path)


def child_exit(server, worker):
    multiprocess.worker_exited(worker.pid)


def on_exit(server):
    multiprocess.cleanup()

# gunicorn 25+ opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl): a second
# server on the machine (make run beside the tests', the benchmarks' or another checkout's) would
# take it over. Nothing here uses gunicornc; older gunicorns ignore the name.
control_socket_disable = True
