x = <<EOF
never closed
