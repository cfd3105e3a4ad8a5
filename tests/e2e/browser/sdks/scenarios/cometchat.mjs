// @cometchat/chat-sdk-javascript in the page, pointed at the CometChat emulator through its
// app settings' host overrides, logging in with the auth token the app's endpoint hands out.
import { CometChat } from "../cometchat.js";
import { fetchSession } from "./session.mjs";

export async function login({ tokenUrl, host, provider }) {
  const session = await fetchSession(tokenUrl);
  const settings = new CometChat.AppSettingsBuilder()
    .setRegion(session.client.region)
    .autoEstablishSocketConnection(false)
    .overrideClientHost(host)
    .overrideAdminHost(host)
    .build();
  await CometChat.init(session.client.app_id, settings);
  let user;
  if (provider === "chatauth") {
    const chatauth = await import(tokenUrl.replace(/token$/, "chatauth.js"));
    user = await chatauth.cometchatLogin(CometChat, { session });
  } else {
    user = await CometChat.login(session.token);
  }
  return { session, uid: user.getUid(), name: user.getName() };
}
