/**
 * The REST surface of shared/API.md: one line per route, to the action that serves it. The table is
 * static on purpose: a route whose service has no live node must still exist and answer 503, not
 * vanish and answer 404 as moleculer-web's auto-aliases would.
 */
export const restRoutes: Record<string, string> = {
    "POST /auth/register": "users.register",
    "POST /auth/login": "users.login",
    "POST /auth/refresh": "users.refresh",
    "POST /auth/logout": "users.logout",
    "GET /users/me": "users.me",
    "PATCH /users/me": "users.updateProfile",
    "POST /users/me/password": "users.changePassword",
    "GET /users": "users.list",
    "GET /users/:id": "users.get",

    "GET /products": "products.list",
    "GET /products/:id": "products.get",
    "POST /products": "products.create",
    "PATCH /products/:id": "products.update",
    "DELETE /products/:id": "products.remove",
    "POST /products/:productId/inventory": "products.adjustInventory",

    "POST /orders": "orders.place",
    "GET /orders": "orders.list",
    "GET /orders/:id": "orders.get",
    "POST /orders/:id/cancel": "orders.cancel",
    "PATCH /orders/:id/status": "orders.updateStatus",
};
