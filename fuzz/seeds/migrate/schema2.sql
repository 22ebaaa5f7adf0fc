CREATE TABLE orders(
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            qty INTEGER,
            price DECIMAL(8,2),
            total REAL AS (qty * price) STORED,
            year INTEGER AS (strftime('%Y', placed_on)) VIRTUAL,
            note TEXT,
            meta,
            placed_on DATE,
            weight REAL,
            updated_at INTEGER DEFAULT (strftime('%s', 'now')))