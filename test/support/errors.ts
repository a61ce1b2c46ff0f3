/** The error a call or request was expected to fail with. */
export interface ContractError {
    name: string;
    message: string;
    code: number;
    type: string;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    data: any;
}

export async function rejectionOf(promise: Promise<unknown>): Promise<ContractError> {
    try {
        await promise;
    } catch (error) {
        return error as ContractError;
    }
    throw new Error("expected the call to fail, but it succeeded");
}
