{
  "targets": [
    {
      "target_name": "shardvpn",
      "sources": [
        "src/native/addon.cc",
        "src/native/errors.cc",
        "src/native/heap.cc",
        "src/native/poller.cc",
        "src/native/batch.cc",
        "src/native/tun.cc",
        "src/native/tun-offload.cc",
        "src/native/udp.cc",
        "src/native/aead.cc",
        "src/native/chacha-poly.cc",
        "src/native/cbc.cc",
        "src/native/tcp.cc",
        "src/native/tls-auth-hmac.cc",
        "src/native/tls-context.cc",
        "src/native/cert-purpose.cc",
        "src/native/socket-routing.cc",
        "src/native/tls-crypt-check.cc",
        "src/native/tls-crypt-codec.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a native call that fails while its worker is being
      # terminated (a shard restarted) cannot throw into JavaScript any more; without it
      # node-addon-api throws a C++ exception out of the call instead, which aborts the process.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
