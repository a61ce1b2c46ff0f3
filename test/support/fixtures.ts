/** Callers for `broker.call(..., { meta: { user } })` in tests that don't go through login. */
import type { AuthUser } from "../../types";

export const adminCaller: AuthUser = {
    id: "00000000-0000-4000-8000-00000000000a",
    email: "admin@x.io",
    role: "admin",
};
