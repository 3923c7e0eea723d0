FROM python:3.11-slim
WORKDIR /app
# PYTHONNODEBUGRANGES: see the Makefile (a CPython 3.11 race between tracebacks and ast.parse on threads)
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONNODEBUGRANGES=1
COPY setup.cfg pyproject.toml README.md ./
COPY shop ./shop
COPY observability ./observability
COPY gunicorn.conf.py ./
RUN pip install --no-cache-dir .
EXPOSE 5000
CMD ["sh", "-c", "flask --app shop init-db && flask --app shop ddb-create-tables && flask --app shop seed --if-empty && exec gunicorn -c gunicorn.conf.py --bind 0.0.0.0:${PORT:-5000} --workers ${WORKERS:-2} --threads 4 --access-logfile - 'shop:create_app()'"]
