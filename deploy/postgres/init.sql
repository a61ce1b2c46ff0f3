-- First start of an empty PostgreSQL data directory (docker-entrypoint-initdb.d), as the
-- superuser: the `agora` role and database. Nothing more: each service creates its own schema
-- (`users`, `products`, `orders`) and runs its migrations at start, under an advisory lock.
-- The same text is in k8s/postgres.yaml (test/unit/deployment.test.ts keeps them equal).
--
-- The password comes from the container's environment (AGORA_DB_PASSWORD), never from this file.
-- Without it psql stops at the first statement and the container doesn't start.
\getenv agora_db_password AGORA_DB_PASSWORD

SELECT format('CREATE ROLE agora LOGIN PASSWORD %L', :'agora_db_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agora')
\gexec

-- Its owner may create schemas in it, which is all the services need: no superuser at run time.
-- (PostgreSQL 15+ already denies everyone else CREATE on its public schema.)
SELECT 'CREATE DATABASE agora OWNER agora'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'agora')
\gexec
