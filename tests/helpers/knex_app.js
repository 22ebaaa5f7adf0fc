// A Node application's database as knex (https://knexjs.org) builds it on better-sqlite3, the
// guide's own library: its migrations (with knex's own knex_migrations tables), then rows
// inserted the way the application would, JavaScript Dates and booleans included.
// Usage: node knex_app.js DB_PATH   (NODE_PATH points at the installed knex and better-sqlite3)
'use strict';
const knex = require('knex')({
  client: 'better-sqlite3',
  connection: { filename: process.argv[2] },
  useNullAsDefault: true,
});

const migrations = {
  '20240101_users': {
    up: (k) => k.schema.createTable('users', (t) => {
      t.increments('id');
      t.string('email').notNullable().unique();
      t.string('name', 100);
      t.boolean('is_admin').notNullable().defaultTo(false);
      t.enu('role', ['reader', 'writer', 'admin']).defaultTo('reader');
      t.json('settings');
      t.timestamps(true, true);
    }),
    down: (k) => k.schema.dropTable('users'),
  },
  '20240102_posts': {
    up: (k) => k.schema
      .createTable('posts', (t) => {
        t.increments('id');
        t.integer('author_id').unsigned().notNullable()
          .references('id').inTable('users').onDelete('CASCADE');
        t.string('title').notNullable();
        t.text('body');
        t.decimal('price', 8, 2);
        t.float('score');
        t.dateTime('published_at');
        t.date('day');
        t.uuid('public_id');
        t.bigInteger('views').notNullable().defaultTo(0);
        t.timestamps(true, true);
        t.index(['author_id', 'published_at']);
      })
      .createTable('tags', (t) => {
        t.string('slug').primary();
        t.string('label');
      })
      .createTable('posts_tags', (t) => {
        t.integer('post_id').unsigned().references('id').inTable('posts');
        t.string('tag_slug').references('slug').inTable('tags');
        t.primary(['post_id', 'tag_slug']);
      }),
    down: (k) => k.schema.dropTable('posts_tags').dropTable('tags').dropTable('posts'),
  },
};

const source = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (m) => m,
  getMigration: async (m) => migrations[m],
};

async function main() {
  await knex.raw('PRAGMA journal_mode = WAL');
  await knex.migrate.latest({ migrationSource: source });
  const users = [];
  for (let i = 0; i < 20; i++) {
    users.push({
      email: `user${i}@example.com`,
      name: `Ünïcode ${i}`,
      is_admin: i === 0,
      role: ['reader', 'writer', 'admin'][i % 3],
      settings: JSON.stringify({ theme: i % 2 ? 'dark' : 'light' }),
    });
  }
  await knex('users').insert(users);
  await knex('tags').insert([{ slug: 'sqlite', label: 'SQLite' }, { slug: 'pg', label: 'Postgres' }]);
  for (let i = 0; i < 40; i++) {
    await knex('posts').insert({
      author_id: 1 + (i % 20),
      title: `Post ${i}`,
      body: 'x'.repeat(i),
      price: i + 0.25,
      score: i / 3,
      // knex binds a JavaScript Date to better-sqlite3 as its milliseconds since 1970.
      published_at: new Date(Date.UTC(2024, 0, 1 + i)),
      day: '2024-02-0' + (1 + (i % 9)),
      public_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      views: i * 1000,
    });
  }
  await knex('posts_tags').insert([{ post_id: 1, tag_slug: 'sqlite' }, { post_id: 2, tag_slug: 'pg' }]);
  await knex.destroy();
}

main().catch((e) => { console.error(e); process.exit(1); });
