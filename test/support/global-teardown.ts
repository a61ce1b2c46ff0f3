/** Removes the run's temporary data folder (see global-setup.ts). */
import fs from "node:fs";

export default function globalTeardown(): void {
    const dir = process.env.AGORA_TEST_DATA_DIR;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
