"""The storefront: server-rendered pages customers load (home with the catalog, product, login,
cart, checkout). Views are thin: they call the same services as the REST API."""
