/**
 * Password hashing with bcrypt. The cost comes from `BCRYPT_ROUNDS` (default 10); production
 * refuses anything below 10, other environments may go as low as bcrypt's 4 to keep tests quick.
 */
import crypto from "node:crypto";
import bcrypt from "bcryptjs";

export const DEFAULT_PASSWORD_COST = 10;
const MIN_PRODUCTION_COST = 10;
const MIN_COST = 4;
/** Each step doubles the work: 15 is already about two seconds a login. */
const MAX_COST = 15;

export function passwordCost(value: string | undefined, production: boolean): number {
    if (value === undefined || value.trim() === "") return DEFAULT_PASSWORD_COST;
    const cost = Number(value);
    const min = production ? MIN_PRODUCTION_COST : MIN_COST;
    if (!Number.isInteger(cost) || cost < min || cost > MAX_COST) {
        throw new Error(
            `BCRYPT_ROUNDS must be an integer from ${min} to ${MAX_COST}${production ? " in production" : ""}, got "${value}"`,
        );
    }
    return cost;
}

export class PasswordHasher {
    private constructor(
        readonly cost: number,
        /** Compared against when there is no account, so that it takes as long as a wrong password. */
        private readonly dummyHash: string,
    ) {}

    static async create(cost: number): Promise<PasswordHasher> {
        const dummyHash = await bcrypt.hash(crypto.randomBytes(24).toString("base64"), cost);
        return new PasswordHasher(cost, dummyHash);
    }

    hash(password: string): Promise<string> {
        return bcrypt.hash(password, this.cost);
    }

    /** False when `hash` is null (no such account), after the same work as a real comparison. */
    async matches(password: string, hash: string | null): Promise<boolean> {
        const matched = await bcrypt.compare(password, hash ?? this.dummyHash);
        return matched && hash !== null;
    }
}
