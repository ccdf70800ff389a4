plain = <<EOF
line one
  two
EOF
indented = <<-EOT
    a
      b
    EOT
crlf = <<END
x
END
