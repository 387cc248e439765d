// Signing in with (or linking) a browser wallet through the wallet's own signing call, with no wallet library:
// MetaMask and every EIP-1193 wallet (window.ethereum: eth_requestAccounts, personal_sign), Phantom (window.phantom
// .solana or window.solana: connect, signMessage) and Keplr (window.keplr: enable, getKey, signArbitrary, ADR-36).
//
// Each button ([data-wallet]) asks its data-challenge-url for the message to sign (POST {address, chain_id}), has
// the wallet sign it, and sends the proof to its data-finish-url (sign in, or link to the signed-in account), which
// answers {redirect}. Requests carry the page's CSRF token. What happens is said in the .wallet-status live region.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var COSMOS_CHAIN = "cosmoshub-4";

  function Refusal(message) { this.message = message; }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          // A 400 without JSON is the CSRF check: the page is older than the session (signed out elsewhere).
          throw new Refusal(data.message || (response.status === 400
            ? "this page has expired: reload it and try again" : "the server answered " + response.status));
        }
        return data;
      });
    });
  }

  function hex(text) {
    return "0x" + Array.from(new TextEncoder().encode(text), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  function base64(bytes) {
    var binary = "";
    Array.from(bytes).forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary);
  }

  var WALLETS = {
    evm: {
      install: "No Ethereum wallet was found in this browser. Install MetaMask from metamask.io, then reload this page.",
      provider: function () { return window.ethereum; },
      sign: async function (challengeUrl) {
        var ethereum = window.ethereum;
        var accounts = await ethereum.request({method: "eth_requestAccounts"});
        var address = accounts[0];
        var chainId = await ethereum.request({method: "eth_chainId"});
        var challenge = await post(challengeUrl, {address: address, chain_id: chainId});
        var signature = await ethereum.request({method: "personal_sign", params: [hex(challenge.message), address]});
        return {nonce: challenge.nonce, signature: signature, address: address, message: challenge.message};
      },
    },
    solana: {
      install: "No Solana wallet was found in this browser. Install Phantom from phantom.app, then reload this page.",
      provider: function () { return (window.phantom && window.phantom.solana) || window.solana; },
      sign: async function (challengeUrl) {
        var wallet = this.provider();
        var connected = await wallet.connect();
        var address = ((connected && connected.publicKey) || wallet.publicKey).toString();  // base58
        var challenge = await post(challengeUrl, {address: address});
        var signed = await wallet.signMessage(new TextEncoder().encode(challenge.message), "utf8");
        var signature = signed.signature || signed;  // Phantom answers {signature, publicKey}
        return {nonce: challenge.nonce, signature: base64(signature), address: address, message: challenge.message};
      },
    },
    cosmos: {
      install: "No Keplr wallet was found in this browser. Install Keplr from keplr.app, then reload this page.",
      provider: function () { return window.keplr; },
      sign: async function (challengeUrl) {
        var keplr = window.keplr;
        await keplr.enable(COSMOS_CHAIN);
        var key = await keplr.getKey(COSMOS_CHAIN);
        var address = key.bech32Address;
        var challenge = await post(challengeUrl, {address: address, chain_id: COSMOS_CHAIN});
        var signed = await keplr.signArbitrary(COSMOS_CHAIN, address, challenge.message);
        return {nonce: challenge.nonce, signature: signed.signature, public_key: signed.pub_key.value,
                address: address, message: challenge.message};
      },
    },
  };

  function say(status, text, problem) {
    status.textContent = text;
    status.classList.toggle("problem", Boolean(problem));
  }

  function describe(error) {
    if (error instanceof Refusal) return sentence(error.message);
    if (error && (error.code === 4001 || /reject|denied|cancel/i.test(String(error.message)))) {
      return "You declined the request in your wallet. Nothing was signed.";
    }
    return "The wallet could not sign: " + ((error && error.message) || String(error)) + ".";
  }

  function sentence(text) {
    text = String(text || "").trim();
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  document.addEventListener("click", async function (event) {
    var button = event.target.closest("[data-wallet]");
    if (!button) return;
    var status = button.closest(".wallet-buttons").querySelector(".wallet-status");
    var wallet = WALLETS[button.dataset.wallet];
    if (!wallet.provider()) {
      say(status, wallet.install, true);
      return;
    }
    button.disabled = true;
    say(status, "Waiting for " + button.dataset.walletName + ": approve the request in its window.");
    try {
      var proof = await wallet.sign(button.dataset.challengeUrl);
      say(status, "Checking the signature…");
      var done = await post(button.dataset.finishUrl, proof);
      say(status, "Done.");
      window.location.assign(done.redirect);
    } catch (error) {
      say(status, describe(error), true);
    } finally {
      button.disabled = false;
    }
  });
})();
