// The API docs page (/docs): Swagger UI on this app's own schema. A file of its own, not an
// inline script, so the page keeps the duty screen's Content-Security-Policy.
"use strict";

window.addEventListener("load", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // the default sends the schema to validator.swagger.io
  });
});
