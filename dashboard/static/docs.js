// @ts-check
// The API docs page (/docs): Swagger UI on this app's own schema. A file of its own, not an
// inline script, so the page keeps the duty screen's Content-Security-Policy. A classic
// script, not a module: it runs after Swagger UI's bundle, which defines SwaggerUIBundle.
"use strict";

window.addEventListener("load", () => {
  /** @type {any} Swagger UI's global, from /docs/assets/swagger-ui-bundle.js */
  const SwaggerUIBundle = Reflect.get(window, "SwaggerUIBundle");
  const root = document.getElementById("swagger-ui");
  Reflect.set(window, "ui", SwaggerUIBundle({
    url: root?.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // the default sends the schema to validator.swagger.io
  }));
});
