// The CareDesk portal page: Microsoft's Web Chat (window.WebChat, from webchat.js) on CareDesk's
// own Direct Line endpoint. Everything the page needs comes from the data-* attributes the
// server wrote on #caredesk-chat; nothing here is inline, so the page's CSP allows no inline script.
(function () {
  'use strict';
  var host = document.getElementById('caredesk-chat');
  if (!host || !window.WebChat) {
    return;
  }
  var data = host.dataset;
  var directLine = window.WebChat.createDirectLine({
    domain: window.location.origin + data.domain,
    token: data.token
  });
  window.WebChat.renderWebChat(
    {
      directLine: directLine,
      userID: data.userId,
      username: data.userName,
      locale: data.locale,
      styleOptions: {
        accent: '#1d4f91',
        backgroundColor: '#ffffff',
        bubbleBackground: '#f3f5f8',
        bubbleBorderRadius: 8,
        bubbleFromUserBackground: '#1d4f91',
        bubbleFromUserTextColor: '#ffffff',
        bubbleFromUserBorderRadius: 8,
        botAvatarInitials: 'CD',
        botAvatarBackgroundColor: '#1d4f91',
        hideUploadButton: true,
        primaryFont: "'Segoe UI', 'Open Sans', 'Lato', Arial, sans-serif",
        richCardWrapTitle: true,
        sendBoxPlaceholder: data.placeholder,
        // A message posted while the stream reconnects (3 to 15 s) is confirmed when it is back.
        sendTimeout: 45000,
        suggestedActionLayout: 'flow'
      }
    },
    host
  );
})();
