CREATE TABLE users(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT COLLATE NOCASE UNIQUE NOT NULL,
            name VARCHAR(10),
            active BOOLEAN DEFAULT 1,
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            prefs JSON,
            balance REAL,
            CHECK (balance >= 0))