// @sendbird/chat with the group channel module, as one ES module for the browser.
export { default as SendbirdChat, SessionHandler, ConnectionHandler } from "@sendbird/chat";
export { GroupChannelModule } from "@sendbird/chat/groupChannel";
