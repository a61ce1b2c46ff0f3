/**
 * Validation rules the gateway adds to GraphQL's own, so that a document it won't run is refused
 * while it is validated (a 422 `VALIDATION_ERROR`), before any resolver is called.
 */
import { GraphQLError, type ValidationContext, type ASTVisitor } from "graphql";

/** Agora has no subscriptions: say so as a validation error, not as an execution failure. */
export function NoSubscriptions(context: ValidationContext): ASTVisitor {
    return {
        OperationDefinition(node) {
            if (node.operation === "subscription") {
                context.reportError(
                    new GraphQLError(
                        "Subscriptions are not supported; use a query or mutation",
                        node,
                    ),
                );
            }
        },
    };
}
