/**
 * One temporary data folder (generated JWT keys) for the whole run, so tests never write into the
 * checkout's `.data`. Workers start after this and inherit the variable.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export default function globalSetup(): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-test-data-"));
    process.env.DATA_DIR = dir;
    process.env.AGORA_TEST_DATA_DIR = dir;
}
