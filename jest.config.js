/** Unit, integration and e2e tests; each file builds what it needs (its own database). */
module.exports = {
    testEnvironment: "node",
    roots: ["<rootDir>/test"],
    transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
    testMatch: ["**/*.test.ts"],
    moduleFileExtensions: ["ts", "js", "json"],
    testTimeout: 30000,
    globalSetup: "<rootDir>/test/support/global-setup.ts",
    globalTeardown: "<rootDir>/test/support/global-teardown.ts",
    // Two cores: more workers only fight over them and the servers.
    maxWorkers: 2,
};
