// chatauth Flask sample: fetch the chat session from the token endpoint and show it.
// The token stays in this script's memory; the page shows only its length.
"use strict";

(function () {
  const root = document.getElementById("chat");
  const show = (id, text) => { document.getElementById(id).textContent = text; };

  function showExtra(title, value) {
    const heading = document.getElementById("extra-title");
    const pre = document.getElementById("extra");
    heading.textContent = title;
    pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    heading.hidden = pre.hidden = false;
  }

  // Matrix: prove the token works by asking the homeserver who we are.
  async function whoami(session) {
    const url = session.client.homeserver_url + "/_matrix/client/v3/account/whoami";
    const response = await fetch(url, { headers: { Authorization: "Bearer " + session.token } });
    showExtra("Matrix whoami (HTTP " + response.status + ")", await response.json());
  }

  async function main() {
    const response = await fetch(root.dataset.tokenUrl, { credentials: "same-origin", cache: "no-store" });
    const body = await response.json();
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      show("status", "Error " + response.status + ": " + body.error.code + " – " + body.error.message +
        (retry ? " (retry in " + retry + " s)" : ""));
      return;
    }
    show("status", "Connected.");
    show("uid", body.uid);
    show("provider", body.provider);
    show("expires", body.expires_at || "never at the provider (chatauth re-issues it after its ttl)");
    show("token", body.token.length + " characters (not shown)");
    show("client", JSON.stringify(body.client, null, 2));
    if (body.provider === "matrix") {
      await whoami(body);
    }
  }

  main().catch((error) => show("status", "Failed: " + error));
})();
