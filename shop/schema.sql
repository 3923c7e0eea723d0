-- The reference schema of the online shopping store. Every statement is
-- idempotent (IF NOT EXISTS), so init-db can run on every start.
-- Beyond the reference: `version` on every row the migration mirrors (bumped with each change,
-- in the same statement: DynamoDB keeps a copy only if it is newer), and the folded text that
-- case-insensitive names and search compare in both stores (`name_key`, `*_fold`, shop/text.py);
-- and the seller who created a category (`owner_id`: NULL for the shop's own, which operators manage).
-- Databases made before them gain the columns at init-db (shop/db.py UPGRADES).
CREATE TABLE IF NOT EXISTS users (
    id INT PRIMARY KEY AUTO_INCREMENT,
    username VARCHAR(50) NOT NULL,
    email VARCHAR(100) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    first_name VARCHAR(50),
    last_name VARCHAR(50),
    is_seller BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    UNIQUE KEY username (username),
    UNIQUE KEY email (email),
    INDEX idx_is_seller (is_seller)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE IF NOT EXISTS categories (
    id INT PRIMARY KEY AUTO_INCREMENT,
    name VARCHAR(100) NOT NULL,
    parent_id INT NULL,
    name_key CHAR(64) NULL,
    owner_id INT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (parent_id) REFERENCES categories(id) ON DELETE RESTRICT,
    INDEX idx_parent_id (parent_id),
    INDEX idx_name (name),
    INDEX idx_owner (owner_id),
    UNIQUE KEY category_name (name_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS products (
    id INT PRIMARY KEY AUTO_INCREMENT,
    seller_id INT NOT NULL,
    category_id INT NOT NULL,
    name VARCHAR(200) NOT NULL,
    description TEXT,
    price DECIMAL(10,2) NOT NULL,
    inventory_quantity INT NOT NULL DEFAULT 0,
    image_url VARCHAR(500) NULL,
    name_fold TEXT NULL,
    description_fold TEXT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    FOREIGN KEY (seller_id) REFERENCES users(id) ON DELETE CASCADE,
    FOREIGN KEY (category_id) REFERENCES categories(id) ON DELETE RESTRICT,
    INDEX idx_seller_id (seller_id),
    INDEX idx_category_id (category_id),
    INDEX idx_created (created_at, id),
    INDEX idx_price (price),
    FULLTEXT idx_search (name, description)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS shopping_carts (
    id INT PRIMARY KEY AUTO_INCREMENT,
    user_id INT NOT NULL,
    product_id INT NOT NULL,
    quantity INT NOT NULL DEFAULT 1,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    FOREIGN KEY (product_id) REFERENCES products(id) ON DELETE CASCADE,
    UNIQUE KEY unique_user_product (user_id, product_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS orders (
    id INT PRIMARY KEY AUTO_INCREMENT,
    user_id INT NOT NULL,
    total_amount DECIMAL(10,2) NOT NULL,
    status ENUM('pending', 'completed', 'cancelled', 'processing', 'shipped', 'delivered') NOT NULL DEFAULT 'pending',
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    INDEX idx_user_created (user_id, created_at, id),
    INDEX idx_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A database created before the fulfilment statuses gets them (idempotent; values appended at
-- the end, so InnoDB changes only the table's metadata).
ALTER TABLE orders MODIFY status ENUM('pending', 'completed', 'cancelled', 'processing', 'shipped', 'delivered')
    NOT NULL DEFAULT 'pending';

CREATE TABLE IF NOT EXISTS order_items (
    id INT PRIMARY KEY AUTO_INCREMENT,
    order_id INT NOT NULL,
    product_id INT NOT NULL,
    quantity INT NOT NULL,
    price_at_time DECIMAL(10,2) NOT NULL,
    FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE CASCADE,
    FOREIGN KEY (product_id) REFERENCES products(id) ON DELETE RESTRICT,
    INDEX idx_order_id (order_id),
    INDEX idx_product_id (product_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- The migration's own tables (shop/migration, shop/aspects/repair_log.py): the journal of writes
-- waiting to reach DynamoDB, the phase document and its audit, dual reads' mismatches, and where a
-- long sync run is.

CREATE TABLE IF NOT EXISTS migration_repairs (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    entity VARCHAR(20) NOT NULL,
    entity_id VARCHAR(64) NOT NULL,
    operation VARCHAR(100) NOT NULL,
    error VARCHAR(1000) NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    repaired_at TIMESTAMP(6) NULL,
    INDEX idx_pending (repaired_at, entity, entity_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS migration_state (
    scope VARCHAR(64) PRIMARY KEY,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL,
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS migration_audit (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    who VARCHAR(200) NOT NULL,
    from_phase VARCHAR(20) NOT NULL,
    to_phase VARCHAR(20) NOT NULL,
    forced BOOLEAN NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    gates TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS migration_mismatches (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    operation VARCHAR(100) NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    attributes VARCHAR(1000) NOT NULL,
    server_phase VARCHAR(20) NOT NULL,
    INDEX idx_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- What reads showed, per entity, summed over every worker in 5-second slots and by the version of the
-- phase document they were served under (shop/migration/evidence.py): the evidence gates and the guard
-- read windows of it.
CREATE TABLE IF NOT EXISTS migration_evidence (
    slot DATETIME NOT NULL,
    version BIGINT NOT NULL,
    entity VARCHAR(32) NOT NULL,
    metric VARCHAR(48) NOT NULL,
    n BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (slot, version, entity, metric)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS migration_sync_runs (
    run VARCHAR(64) NOT NULL,
    segments INT NOT NULL,
    plan MEDIUMTEXT NOT NULL,
    started_at DATETIME(6) NOT NULL,
    PRIMARY KEY (run)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS migration_sync_progress (
    run VARCHAR(64) NOT NULL,
    segment INT NOT NULL,
    step VARCHAR(64) NOT NULL,
    cursor_json TEXT NULL,
    done TINYINT(1) NOT NULL DEFAULT 0,
    found MEDIUMTEXT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (run, segment, step)
) ENGINE=InnoDB;
