// The app's token endpoint, same origin, with the session cookie (as the sample's chat.js).
export async function fetchSession(tokenUrl) {
  const response = await fetch(tokenUrl, {
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) {
    throw new Error(`GET ${tokenUrl} answered ${response.status}`);
  }
  return response.json();
}
