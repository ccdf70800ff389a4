// Functions: Go text/template's builtins (doc.go "Functions") and the consul-template
// functions Vault Agent templates use.
#include <gtest/gtest.h>

#include "tests/unit/template/template_test_util.h"

namespace strongroom::tmpl::testing {
namespace {

TEST(TemplateBuiltins, AndOrReturnTheDecidingValue) {
  EXPECT_EQ(Out("{{and 1 \"x\" 2}} {{and 1 0 2}} {{or 0 \"\" 3}} {{or 0 \"\"}}"), "2 0 3 ");
}

TEST(TemplateBuiltins, AndOrShortCircuit) {
  Options o;
  o.error_on_missing_key = true;
  // The failing second argument is never evaluated.
  EXPECT_EQ(Out("{{and false .nope}} {{or true .nope}}", Json("{}"), o), "false true");
  EXPECT_EQ(Out("{{and true .nope}}", Json("{}"), o).substr(0, 6), "ERROR:");
}

TEST(TemplateBuiltins, AndOrShortCircuitSkipsFunctionCalls) {
  int calls = 0;
  FunctionMap fns;
  fns["count"] = [&](std::span<const json::value>) -> absl::StatusOr<json::value> {
    ++calls;
    return json::value(true);
  };
  EXPECT_EQ(Out("{{or 1 (count)}} {{and 0 (count)}} {{and 1 (count)}}", {}, {}, fns), "1 0 true");
  EXPECT_EQ(calls, 1);
}

TEST(TemplateBuiltins, Not) {
  EXPECT_EQ(Out("{{not 0}} {{not \"a\"}} {{not .x}}", Json("{}")), "true false true");
}

TEST(TemplateBuiltins, Len) {
  EXPECT_EQ(Out("{{len .s}} {{len .a}} {{len .o}}", Json(R"({"s":"héllo","a":[1,2],"o":{"k":1}})")),
            "6 2 1");
  EXPECT_EQ(
      Out("{{len 3}}"),
      "ERROR: template: t:1:2: executing \"t\" at <len 3>: error calling len: len of type int");
}

TEST(TemplateBuiltins, Index) {
  const json::value d = Json(R"({"a":[10,[20,21]],"m":{"k-1":"v"},"s":"AB"})");
  EXPECT_EQ(Out("{{index .a 0}} {{index .a 1 1}} {{index .m \"k-1\"}} {{index .s 1}} "
                "{{index .m \"zz\"}}",
                d),
            "10 21 v 66 <no value>");
  EXPECT_EQ(Out("{{index .a 5}}", d),
            "ERROR: template: t:1:2: executing \"t\" at <index .a 5>: error calling index: index "
            "out of range: 5");
  EXPECT_EQ(Out("{{index .a \"x\"}}", d).find("cannot index slice/array with type string") !=
                std::string::npos,
            true);
  EXPECT_NE(Out("{{index .m 1}}", d).find("value has type int; should be string"),
            std::string::npos);
}

TEST(TemplateBuiltins, Slice) {
  EXPECT_EQ(Out("{{slice .s 1 3}} {{slice .a 1}} {{slice .a}} {{slice .a 0 1 2}}",
                Json(R"({"s":"abcd","a":[1,2,3]})")),
            "bc [2 3] [1 2 3] [1]");
  EXPECT_NE(Out("{{slice .s 3 1}}", Json(R"({"s":"abcd"})")).find("invalid slice index: 3 > 1"),
            std::string::npos);
}

TEST(TemplateBuiltins, PrintAddsSpacesBetweenNonStrings) {
  EXPECT_EQ(Out("{{print 1 2 \"a\" \"b\" 3 true}}"), "1 2ab3 true");
  EXPECT_EQ(Out("{{println 1 \"a\"}}"), "1 a\n");
}

TEST(TemplateBuiltins, PrintfVerbs) {
  EXPECT_EQ(
      Out("{{printf \"%s|%d|%v|%q|%x|%X|%t|%f|%.2f|%e|%g|%%|%c|%o|%b|%U\" \"a\" 42 .m "
          "\"q\\\"\" 255 \"hi\" true 1.5 3.14159 1234.5 0.000012 65 8 5 65}}",
          Json(R"({"m":{"b":[1,2],"a":true}})")),
      "a|42|map[a:true b:[1 2]]|\"q\\\"\"|ff|6869|true|1.500000|3.14|1.234500e+03|1.2e-05|%|A|"
      "10|101|U+0041");
}

TEST(TemplateBuiltins, PrintfWidthAndFlags) {
  EXPECT_EQ(Out("{{printf \"[%5s][%-5s][%05d][%+d][%x][%.3s][%6.2f][%*d][%-4d]\" \"ab\" \"ab\" "
                "-42 7 \"\" \"abcdef\" 3.14159 3 9 5}}"),
            "[   ab][ab   ][-0042][+7][][abc][  3.14][  9][5   ]");
}

TEST(TemplateBuiltins, PrintfBadVerbsAndArgumentCounts) {
  EXPECT_EQ(Out("{{printf \"%d %z\" \"s\" 1}}"), "%!d(string=s) %!z(int=1)");
  EXPECT_EQ(Out("{{printf \"%d %d\" 1}}"), "1 %!d(MISSING)");
  EXPECT_EQ(Out("{{printf \"%d\" 1 \"x\"}}"), "1%!(EXTRA string=x)");
  EXPECT_EQ(Out("{{printf \"%\"}}"), "%!(NOVERB)");
  EXPECT_EQ(Out("{{printf \"%d\" .n}}", Json(R"({"n":null})")), "%!d(<nil>)");
  EXPECT_EQ(Out("{{printf \"%d\" .a}}", Json(R"({"a":[1,"x"]})")), "[1 %!d(string=x)]");
}

TEST(TemplateBuiltins, PrintfArgumentIndex) {
  EXPECT_EQ(Out("{{printf \"%[2]s %[1]s\" \"a\" \"b\"}}"), "b a");
}

TEST(TemplateBuiltins, Comparisons) {
  EXPECT_EQ(Out("{{eq 1 1}} {{eq \"a\" \"b\"}} {{eq 1 2 3 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} "
                "{{gt \"b\" \"a\"}} {{ge 1 2}} {{eq true true}}"),
            "true false true true true true true false true");
}

TEST(TemplateBuiltins, ComparisonsAcrossNumberKinds) {
  EXPECT_EQ(Out("{{eq .i 3.0}} {{lt .i 3.5}} {{gt .u -1}} {{lt .i .u}} {{eq .big .d}} "
                "{{gt .big .d}}",
                Json(R"({"i":3,"u":18446744073709551615,"big":9007199254740993,)"
                     R"("d":9007199254740992.0})")),
            "true true true true false true");
  // Like Go, a constant past int64 is refused.
  EXPECT_NE(Out("{{eq 1 18446744073709551615}}").find("18446744073709551615 overflows int"),
            std::string::npos);
}

TEST(TemplateBuiltins, ComparisonErrors) {
  EXPECT_EQ(Out("{{eq 1 \"1\"}}"),
            "ERROR: template: t:1:2: executing \"t\" at <eq 1 \"1\">: error calling eq: "
            "incompatible types for comparison");
  EXPECT_NE(Out("{{lt true false}}").find("error calling lt: invalid type for comparison"),
            std::string::npos);
  EXPECT_NE(Out("{{lt .a .a}}", Json(R"({"a":[1]})")).find("invalid type for comparison"),
            std::string::npos);
  EXPECT_NE(Out("{{eq .a .a}}", Json(R"({"a":[1]})")).find("non-comparable types"),
            std::string::npos);
  EXPECT_NE(Out("{{eq 1}}").find("missing argument for comparison"), std::string::npos);
  EXPECT_NE(Out("{{lt 1}}").find("wrong number of args for lt: want 2 got 1"), std::string::npos);
}

TEST(TemplateBuiltins, EqWithMissingValueIsFalse) {
  EXPECT_EQ(Out("{{eq .nope \"x\"}} {{eq .nope .other}}", Json("{}")), "false true");
}

TEST(TemplateBuiltins, HtmlJsUrlquery) {
  EXPECT_EQ(Out("{{html \"<a href='x'>&\\\"\"}}"), "&lt;a href=&#39;x&#39;&gt;&amp;&#34;");
  EXPECT_EQ(Out("{{js \"it's <b>=\\\"\\n\"}}"), "it\\'s \\u003Cb\\u003E\\u003D\\\"\\u000A");
  EXPECT_EQ(Out("{{urlquery \"a b&c=d/é\"}}"), "a+b%26c%3Dd%2F%C3%A9");
}

TEST(TemplateBuiltins, CallIsRefused) {
  EXPECT_NE(Out("{{call .f}}", Json(R"({"f":1})")).find("error calling call: non-function"),
            std::string::npos);
}

TEST(TemplateConsul, ToJsonIsCompactSortedAndHtmlEscaped) {
  EXPECT_EQ(Out("{{toJSON .}}", Json(R"({"b":[1,2.5,null,true],"a":"<&>\u2028\n","c":{}})")),
            R"({"a":"\u003c\u0026\u003e\u2028\n","b":[1,2.5,null,true],"c":{}})");
}

TEST(TemplateConsul, ToJsonFloatsAsGoEncodesThem) {
  EXPECT_EQ(Out("{{toJSON .}}", Json(R"([1e21,1e20,0.0000001,0.000001,-0.0,3.0])")),
            "[1e+21,100000000000000000000,1e-7,0.000001,-0,3]");
}

TEST(TemplateConsul, ToJsonPretty) {
  EXPECT_EQ(Out("{{toJSONPretty .}}", Json(R"({"b":{"y":[1,{}],"x":[]},"a":"s"})")),
            "{\n  \"a\": \"s\",\n  \"b\": {\n    \"x\": [],\n    \"y\": [\n      1,\n      {}\n"
            "    ]\n  }\n}");
  EXPECT_EQ(Out("{{toJSONPretty .missing}}", Json("{}")), "null");
}

TEST(TemplateConsul, Base64) {
  EXPECT_EQ(Out("{{base64Encode \"hello?>\"}} {{base64URLEncode \"hello?>\"}} "
                "{{base64Decode \"aGk=\"}} {{base64URLDecode \"aGVsbG8_Pg==\"}} "
                "{{base64Decode \"aGVs\\nbG8=\"}}"),
            "aGVsbG8/Pg== aGVsbG8_Pg== hi hello?> hello");
  EXPECT_EQ(Out("{{base64Decode \"a!==\"}}"),
            "ERROR: template: t:1:2: executing \"t\" at <base64Decode \"a!==\">: error calling "
            "base64Decode: base64Decode: illegal base64 data at input byte 1");
  EXPECT_NE(Out("{{base64Decode \"aGk\"}}").find("illegal base64 data"), std::string::npos);
}

TEST(TemplateConsul, EnvUsesTheOptionsLookup) {
  Options o;
  o.env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "POD") return "web-1";
    return std::nullopt;
  };
  EXPECT_EQ(Out("{{env \"POD\"}}|{{env \"NOPE\"}}|{{envOrDefault \"NOPE\" \"d\"}}", {}, o),
            "web-1||d");
  EXPECT_NE(Out("{{mustEnv \"NOPE\"}}", {}, o).find("is not set"), std::string::npos);
}

TEST(TemplateConsul, CaseAndTrim) {
  EXPECT_EQ(Out("{{toLower \"AbC\"}} {{toUpper \"AbC\"}} {{toTitle \"hello wide_world\"}} "
                "[{{trimSpace \"  x \\n\"}}] {{\"/a/b\" | trimPrefix \"/\"}} "
                "{{\"a.txt\" | trimSuffix \".txt\"}}"),
            "abc ABC Hello Wide_world [x] a/b a");
}

TEST(TemplateConsul, SplitAndJoin) {
  EXPECT_EQ(Out("{{range split \",\" \" a,b,,c \"}}[{{.}}]{{end}} {{split \",\" \"\" | len}}"),
            "[a][b][][c] 0");
  EXPECT_EQ(Out("{{.l | join \", \"}}", Json(R"({"l":["x","y"]})")), "x, y");
  EXPECT_NE(Out("{{.l | join \",\"}}", Json(R"({"l":["x",1]})")).find("expected []string"),
            std::string::npos);
}

TEST(TemplateConsul, ReplaceAll) {
  EXPECT_EQ(Out("{{\"a-b-c\" | replaceAll \"-\" \"_\"}} {{replaceAll \"\" \".\" \"ab\"}}"),
            "a_b_c .a.b.");
}

TEST(TemplateConsul, ContainsAndIn) {
  EXPECT_EQ(Out("{{.tags | contains \"prod\"}} {{in .tags \"dev\"}} {{\"abc\" | contains \"b\"}} "
                "{{.nums | contains 2}} {{containsAll .want .tags}} {{containsAny .want .tags}} "
                "{{containsNone .want .tags}} {{containsNotAll .want .tags}}",
                Json(R"({"tags":["prod","web"],"nums":[1,2],"want":["prod","x"]})")),
            "true false true true false true false true");
}

TEST(TemplateConsul, ParseFunctions) {
  EXPECT_EQ(Out("{{(parseJSON .j).a}} {{parseInt \"-42\"}} {{parseUint \"7\"}} "
                "{{parseFloat \"2.5\"}} {{parseBool \"True\"}} {{parseInt \"\"}} "
                "{{parseJSON \"\" | len}}",
                Json(R"({"j":"{\"a\":[1,2]}"})")),
            "[1 2] -42 7 2.5 true 0 0");
}

TEST(TemplateConsul, ParseErrorsDoNotEchoTheInput) {
  for (const std::string fn : {"parseInt", "parseUint", "parseFloat", "parseBool", "parseJSON"}) {
    const std::string out = Out("{{" + fn + " .s}}", Json(R"({"s":"sk-live-SECRET"})"));
    EXPECT_EQ(out.substr(0, 6), "ERROR:") << fn;
    EXPECT_EQ(out.find("SECRET"), std::string::npos) << out;
  }
  EXPECT_NE(Out("{{parseInt \"99999999999999999999\"}}").find("value out of range"),
            std::string::npos);
}

TEST(TemplateConsul, Indent) {
  EXPECT_EQ(Out("{{indent 2 \"a\\nb\\n\\nc\"}}"), "  a\n  b\n\n  c");
  EXPECT_NE(Out("{{indent -1 \"a\"}}").find("indent value must be a positive integer"),
            std::string::npos);
}

TEST(TemplateConsul, Arithmetic) {
  EXPECT_EQ(Out("{{add 1 2}} {{10 | subtract 3}} {{multiply 4 2.5}} {{10 | divide 4}} "
                "{{10 | modulo 4}} {{1.0 | divide 4}}"),
            "3 7 10 2 2 0.25");
  EXPECT_NE(Out("{{1 | divide 0}}").find("division by zero"), std::string::npos);
}

TEST(TemplateConsul, WrongArgumentTypeIsReportedLikeGo) {
  EXPECT_EQ(Out("{{toUpper .n}}", Json(R"({"n":5})")),
            "ERROR: template: t:1:2: executing \"t\" at <toUpper .n>: wrong type for value; "
            "expected string; got int");
  EXPECT_NE(Out("{{toUpper .nope}}", Json("{}")).find("invalid value; expected string"),
            std::string::npos);
  EXPECT_NE(Out("{{toUpper}}").find("wrong number of args for toUpper: want 1 got 0"),
            std::string::npos);
}

}  // namespace
}  // namespace strongroom::tmpl::testing
