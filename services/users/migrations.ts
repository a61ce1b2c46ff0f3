/**
 * The `users` schema: accounts and the refresh tokens of their sessions.
 */
import type { Migration } from "../../mixins/db.mixin";
import { outboxMigration } from "../../mixins/outbox.mixin";

export const migrations: Migration[] = [
    {
        name: "001-users-and-refresh-tokens",
        up: [
            `CREATE TABLE users.users (
                id uuid PRIMARY KEY,
                email text NOT NULL,
                password_hash text NOT NULL,
                name text NOT NULL,
                role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
                phone text,
                address_line1 text,
                address_line2 text,
                address_city text,
                address_postal_code text,
                address_country text,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )`,
            // One account per address whatever its case; register and the admin seed rely on it.
            `CREATE UNIQUE INDEX users_email_key ON users.users (lower(email))`,
            `CREATE INDEX users_created_idx ON users.users (created_at DESC, id DESC)`,
            // A family is one session: every token rotated from one login shares its family_id.
            `CREATE TABLE users.refresh_tokens (
                id uuid PRIMARY KEY,
                user_id uuid NOT NULL REFERENCES users.users (id) ON DELETE CASCADE,
                family_id uuid NOT NULL,
                token_hash text NOT NULL UNIQUE,
                expires_at timestamptz NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                rotated_at timestamptz,
                revoked_at timestamptz
            )`,
            `CREATE INDEX refresh_tokens_family_idx ON users.refresh_tokens (family_id)`,
            `CREATE INDEX refresh_tokens_live_user_idx ON users.refresh_tokens (user_id)
                WHERE revoked_at IS NULL`,
        ],
    },
    outboxMigration("users"),
    {
        // Every change of the shipping details commits with its \`user.profileUpdated\` event.
        name: "002-profile-updated-events",
        up: [
            `CREATE FUNCTION users.profile_updated() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM users.enqueue_event('user.profileUpdated', jsonb_build_object(
                     'userId', NEW.id,
                     'shipping', jsonb_build_object(
                         'name', NEW.name,
                         'phone', NEW.phone,
                         'address', jsonb_build_object(
                             'line1', NEW.address_line1,
                             'line2', NEW.address_line2,
                             'city', NEW.address_city,
                             'postalCode', NEW.address_postal_code,
                             'country', NEW.address_country)),
                     -- Microseconds: consumers order updates by it, and two may share a millisecond.
                     'updatedAt', to_char(NEW.updated_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
                 RETURN NULL;
             END $$`,
            `CREATE TRIGGER users_profile_updated AFTER UPDATE ON users.users FOR EACH ROW
             WHEN ((OLD.name, OLD.phone, OLD.address_line1, OLD.address_line2, OLD.address_city,
                    OLD.address_postal_code, OLD.address_country)
                   IS DISTINCT FROM
                   (NEW.name, NEW.phone, NEW.address_line1, NEW.address_line2, NEW.address_city,
                    NEW.address_postal_code, NEW.address_country))
             EXECUTE FUNCTION users.profile_updated()`,
        ],
    },
];
