#include "api/token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace api {
namespace {

class TokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("spamsink_token_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "token").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text, mode_t mode) {
    std::ofstream(path_, std::ios::trunc) << text;
    chmod(path_.c_str(), mode);
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(TokenFile, TheFirstLineWithoutBlanks) {
  Write("  s3cr3t-T0ken \r\n\n \n", 0600);
  auto t = ReadTokenFile(path_);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(*t, "s3cr3t-T0ken");
  Write("abc", 0640);  // root:<server user> 0640 is the usual way
  t = ReadTokenFile(path_);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(*t, "abc");
}

TEST_F(TokenFile, RefusesAFileOthersCanReadOrTheGroupCanWrite) {
  for (mode_t mode : {0644, 0604, 0602, 0620, 0666}) {
    Write("abc\n", mode);
    auto t = ReadTokenFile(path_);
    ASSERT_FALSE(t.ok()) << std::oct << mode;
    char want[8];
    std::snprintf(want, sizeof want, "%04o", unsigned(mode));
    EXPECT_NE(t.error().find(std::string("mode ") + want), std::string::npos)
        << t.error();
    EXPECT_EQ(t.error().rfind("api.token_file: \"" + path_ + "\"", 0), 0u)
        << t.error();
  }
}

TEST_F(TokenFile, RefusesWhatIsNotOneVisibleToken) {
  for (const char* text :
       {"", "\n", "  \n", "two words\n", "one\ntwo\n", "tab\there", "\x01x"}) {
    Write(text, 0600);
    auto t = ReadTokenFile(path_);
    EXPECT_FALSE(t.ok()) << "\"" << text << "\" gave " << *t;
  }
  Write(std::string(4097, 'a'), 0600);
  EXPECT_FALSE(ReadTokenFile(path_).ok());
  Write(std::string(4096, 'a'), 0600);
  EXPECT_TRUE(ReadTokenFile(path_).ok());
  auto missing = ReadTokenFile((dir_ / "nothing").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("cannot be read"), std::string::npos);
  chmod(dir_.c_str(), 0700);
  EXPECT_FALSE(ReadTokenFile(dir_.string()).ok());  // not a regular file
}

TEST_F(TokenFile, ResolveTakesTheFileWhenSet) {
  Options o;
  o.token = "inline";
  EXPECT_EQ(*ResolveToken(o), "inline");
  Write("from-file\n", 0600);
  o.token.clear();
  o.token_file = path_;
  EXPECT_EQ(*ResolveToken(o), "from-file");
}

// api.token_file, then SPAMSINK_API_TOKEN, then api.token.
TEST_F(TokenFile, PrecedenceIsFileThenEnvironmentThenInline) {
  Write("from-file\n", 0600);
  Options o;
  o.token_file = path_;
  EXPECT_EQ(*ResolveToken(o, "from-env"), "from-file");
  EXPECT_EQ(TokenSource(o, "from-env"), "file");
  o.token_file.clear();
  o.token = "inline";
  EXPECT_EQ(*ResolveToken(o, "from-env"), "from-env");
  EXPECT_EQ(TokenSource(o, "from-env"), "environment");
  EXPECT_EQ(*ResolveToken(o, ""), "inline");
  EXPECT_EQ(TokenSource(o, ""), "inline");
  o.token.clear();
  EXPECT_EQ(*ResolveToken(o, ""), "");
  EXPECT_EQ(TokenSource(o, ""), "none");
  // The file's rules, and the value never in the message.
  auto bad = ResolveToken(o, "two words");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(),
            "SPAMSINK_API_TOKEN: the token must be visible ASCII (no blanks "
            "inside)");
  EXPECT_FALSE(ResolveToken(o, std::string(4097, 'x')).ok());
}

// Taken once: the value is kept, the variable is gone from the
// environment (children, getenv) and blanked in place.
TEST(EnvironmentToken, IsTakenOutOfTheEnvironment) {
  setenv(kTokenVariable, "t0ken-in-env", 1);
  char* where = getenv(kTokenVariable);
  ASSERT_NE(where, nullptr);
  TakeTokenFromEnvironment();
  EXPECT_EQ(EnvironmentToken(), "t0ken-in-env");
  EXPECT_EQ(getenv(kTokenVariable), nullptr);
  TakeTokenFromEnvironment();  // nothing left to take: the value stays
  EXPECT_EQ(EnvironmentToken(), "t0ken-in-env");
}

}  // namespace
}  // namespace api
