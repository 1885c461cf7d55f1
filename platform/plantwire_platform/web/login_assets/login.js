// The login page: trades a pasted token for a session cookie (HttpOnly: this script never sees it).
"use strict";

const form = document.getElementById("login-form");
const message = document.getElementById("login-message");

function show(text) {
  message.textContent = text;
  message.hidden = false;
}

if (new URLSearchParams(location.search).get("link") === "invalid") {
  show("That login link was already used or has expired: paste a token instead.");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  let resp;
  try {
    resp = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token: input.value.trim() }),
      credentials: "same-origin",
    });
  } catch (err) {
    show("The platform does not answer.");
    return;
  }
  input.value = "";
  if (resp.ok) {
    location.replace("/");
    return;
  }
  let text = `HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    if (body && body.error) text = body.error.message;
  } catch (err) {
    // keep the status line
  }
  show(text);
});
