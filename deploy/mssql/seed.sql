-- caravan_sample: a SQL Server database covering every type caravan maps,
-- for watching SQL Server -> PostgreSQL work (docker compose up mssql-seed).
SET NOCOUNT ON;
GO
IF DB_ID(N'caravan_sample') IS NOT NULL
BEGIN
    ALTER DATABASE caravan_sample SET SINGLE_USER WITH ROLLBACK IMMEDIATE;
    DROP DATABASE caravan_sample;
END
GO
CREATE DATABASE caravan_sample;
GO
ALTER DATABASE caravan_sample SET ALLOW_SNAPSHOT_ISOLATION ON;
GO
USE caravan_sample;
GO
CREATE SCHEMA sales;
GO
CREATE TYPE dbo.Sku FROM varchar(16) NOT NULL;
GO

-- identity, defaults, check, comments
CREATE TABLE dbo.Customers (
    CustomerID   int IDENTITY(1000, 1) NOT NULL CONSTRAINT PK_Customers PRIMARY KEY,
    Name         nvarchar(100) COLLATE Latin1_General_CI_AS NOT NULL,
    Email        varchar(200) COLLATE SQL_Latin1_General_CP1_CI_AS NULL,
    Country      char(2) COLLATE Latin1_General_CI_AS NOT NULL CONSTRAINT DF_Customers_Country DEFAULT ('US'),
    CreatedAt    datetime2(7) NOT NULL CONSTRAINT DF_Customers_Created DEFAULT (sysdatetime()),
    IsActive     bit NOT NULL CONSTRAINT DF_Customers_Active DEFAULT ((1)),
    ExternalRef  uniqueidentifier NOT NULL CONSTRAINT DF_Customers_Ref DEFAULT (newid()),
    CreditLimit  money NULL CONSTRAINT CK_Customers_Credit CHECK (CreditLimit >= 0)
);
EXEC sys.sp_addextendedproperty N'MS_Description', N'People who buy things', N'SCHEMA', N'dbo', N'TABLE', N'Customers';
EXEC sys.sp_addextendedproperty N'MS_Description', N'Display name', N'SCHEMA', N'dbo', N'TABLE', N'Customers', N'COLUMN', N'Name';
CREATE UNIQUE INDEX UX_Customers_Email ON dbo.Customers (Email) WHERE Email IS NOT NULL;
GO

-- composite key with a uniqueidentifier, FK with actions, computed column
CREATE TABLE sales.Orders (
    CustomerID int NOT NULL,
    OrderNo    smallint NOT NULL,
    OrderGuid  uniqueidentifier NOT NULL,
    PlacedAt   datetime NOT NULL,
    Total      decimal(19,4) NOT NULL,
    Tax        smallmoney NULL,
    Note       nvarchar(max) COLLATE Latin1_General_CI_AS NULL,
    Gross      AS (Total + ISNULL(Tax, 0)),
    CONSTRAINT PK_Orders PRIMARY KEY (CustomerID, OrderNo),
    CONSTRAINT FK_Orders_Customers FOREIGN KEY (CustomerID) REFERENCES dbo.Customers (CustomerID) ON DELETE CASCADE ON UPDATE NO ACTION
);
CREATE INDEX IX_Orders_Placed ON sales.Orders (PlacedAt DESC) INCLUDE (Total);
GO

-- every type, with edge values
CREATE TABLE dbo.AllTypes (
    id             int NOT NULL CONSTRAINT PK_AllTypes PRIMARY KEY,
    c_bit          bit NULL,
    c_tinyint      tinyint NULL,
    c_smallint     smallint NULL,
    c_int          int NULL,
    c_bigint       bigint NULL,
    c_decimal      decimal(38,0) NULL,
    c_decimal38    decimal(38,38) NULL,
    c_numeric      numeric(10,2) NULL,
    c_money        money NULL,
    c_smallmoney   smallmoney NULL,
    c_float        float NULL,
    c_float24      float(24) NULL,
    c_real         real NULL,
    c_date         date NULL,
    c_time         time(7) NULL,
    c_datetime     datetime NULL,
    c_datetime2    datetime2(7) NULL,
    c_smalldatetime smalldatetime NULL,
    c_dto          datetimeoffset(7) NULL,
    c_char         char(10) COLLATE Latin1_General_CI_AS NULL,
    c_varchar      varchar(50) COLLATE Latin1_General_CI_AS NULL,
    c_varchar_max  varchar(max) COLLATE Latin1_General_CI_AS NULL,
    c_varchar_utf8 varchar(50) COLLATE Latin1_General_100_CI_AS_SC_UTF8 NULL,
    c_nchar        nchar(10) COLLATE Latin1_General_CI_AS NULL,
    c_nvarchar     nvarchar(50) COLLATE Latin1_General_CI_AS NULL,
    c_nvarchar_max nvarchar(max) COLLATE Latin1_General_CI_AS NULL,
    c_text         text COLLATE Latin1_General_CI_AS NULL,
    c_ntext        ntext COLLATE Latin1_General_CI_AS NULL,
    c_binary       binary(8) NULL,
    c_varbinary    varbinary(100) NULL,
    c_varbinary_max varbinary(max) NULL,
    c_image        image NULL,
    c_guid         uniqueidentifier NULL,
    c_xml          xml NULL,
    c_variant      sql_variant NULL,
    c_hierarchy    hierarchyid NULL,
    c_geography    geography NULL,
    c_geometry     geometry NULL,
    c_sku          dbo.Sku NULL,
    c_rowversion   rowversion,
    c_computed     AS (CAST(c_int AS bigint) * 2) PERSISTED
);
GO
INSERT dbo.AllTypes (id, c_bit, c_tinyint, c_smallint, c_int, c_bigint, c_decimal, c_decimal38, c_numeric, c_money, c_smallmoney,
    c_float, c_float24, c_real, c_date, c_time, c_datetime, c_datetime2, c_smalldatetime, c_dto,
    c_char, c_varchar, c_varchar_max, c_varchar_utf8, c_nchar, c_nvarchar, c_nvarchar_max, c_text, c_ntext,
    c_binary, c_varbinary, c_varbinary_max, c_image, c_guid, c_xml, c_variant, c_hierarchy, c_geography, c_geometry, c_sku)
VALUES
 (1, 0, 0, -32768, -2147483648, -9223372036854775808, -99999999999999999999999999999999999999, -0.99999999999999999999999999999999999999,
  -99999999.99, -922337203685477.5808, -214748.3648, -1.79E+308, -3.40E+38, -3.40E+38,
  '0001-01-01', '00:00:00', '1753-01-01T00:00:00', '0001-01-01T00:00:00', '1900-01-01T00:00:00', '0001-01-01T00:00:00+00:00',
  '', '', '', '', N'', N'', N'', '', N'',
  0x0000000000000000, 0x, 0x, 0x, '00000000-0000-0000-0000-000000000000', N'<empty/>', CAST(0 AS int), hierarchyid::GetRoot(),
  geography::Point(0, 0, 4326), geometry::STGeomFromText('POINT (0 0)', 0), 'A'),
 (2, 1, 255, 32767, 2147483647, 9223372036854775807, 99999999999999999999999999999999999999, 0.99999999999999999999999999999999999999,
  99999999.99, 922337203685477.5807, 214748.3647, 1.79E+308, 3.40E+38, 3.40E+38,
  '9999-12-31', '23:59:59.9999999', '9999-12-31T23:59:59.997', '9999-12-31T23:59:59.9999999', '2079-06-06T23:59:00', '9999-12-31T23:59:59.9999999+14:00',
  'zzzzzzzzzz', N'Ünïcödé in cp1252', REPLICATE(CAST('long ' AS varchar(max)), 4000), N'UTF-8 ∑ € 😀', N'😀 pair', N'日本語テキスト 𝄞', N'tab' + NCHAR(9) + N'newline' + NCHAR(10) + N'backslash\', 'legacy text', N'legacy ntext 😀',
  0xFFFFFFFFFFFFFFFF, 0xDEADBEEF, CAST(REPLICATE(CAST(0xAB AS varbinary(max)), 10000) AS varbinary(max)), 0x474946383961,
  '6F9619FF-8B86-D011-B42D-00C04FC964FF', N'<order id="1"><line sku="A">é</line></order>', CAST(N'variant text' AS nvarchar(20)), CAST('/1/2.5/-3/' AS hierarchyid),
  geography::STGeomFromText('LINESTRING(-122.360 47.656, -122.343 47.656)', 4326), geometry::STGeomFromText('POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))', 0), 'ZZZZZZZZZZZZZZZZ'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 1, 42, 42, 42, 42, 42, 0.5, 0.05, 0.0001, 0.0001, 0.1, 0.1, 0.1,
  '2020-02-29', '12:34:56.1234565', '2020-01-01T00:00:00.003', '2020-01-01T23:59:59.9999995', '2020-01-01T10:00:00', '2020-01-01T10:00:00.5+05:30',
  'pad', 'x', 'y', 'z', N'pad', N'plain', N'more text', 't', N'n',
  0x01, 0x02, 0x03, 0x04, NEWID(), N'<r/>', CAST('2020-01-01T10:00:00.1234567' AS datetime2(7)), CAST('/1/' AS hierarchyid),
  geography::STGeomFromText('POINT(1 2 3 4)', 4326), NULL, 'B');
GO

-- a heap: no key, read in one chunk in %%physloc%% order
CREATE TABLE dbo.AuditHeap (
    At      datetimeoffset(3) NOT NULL,
    Actor   sysname NOT NULL,
    Payload nvarchar(400) COLLATE Latin1_General_CI_AS NULL
);
GO

-- (NUL characters and unpaired surrogates, which stop a migration under the
-- default value policy, are exercised by source/mssql's integration test.)

-- a few hundred rows
DECLARE @i int = 0;
WHILE @i < 300
BEGIN
    INSERT dbo.Customers (Name, Email, Country, CreditLimit)
    VALUES (CONCAT(N'Customer ', @i, CASE WHEN @i % 7 = 0 THEN N' 😀' ELSE N'' END),
            CASE WHEN @i % 5 = 0 THEN NULL ELSE CONCAT('c', @i, '@example.com') END,
            CASE @i % 3 WHEN 0 THEN 'US' WHEN 1 THEN 'DE' ELSE 'JP' END,
            CAST(@i * 10.5 AS money));
    SET @i += 1;
END;

INSERT sales.Orders (CustomerID, OrderNo, OrderGuid, PlacedAt, Total, Tax, Note)
SELECT c.CustomerID, n.n, NEWID(), DATEADD(minute, c.CustomerID * 7 + n.n, '2024-01-01T00:00:00'),
       CAST(c.CustomerID % 97 + n.n * 0.25 AS decimal(19,4)), CASE WHEN n.n = 2 THEN NULL ELSE CAST(n.n AS smallmoney) END,
       CASE WHEN n.n = 1 THEN N'first order' END
FROM dbo.Customers AS c
CROSS JOIN (VALUES (1), (2), (3)) AS n(n);

INSERT dbo.AuditHeap (At, Actor, Payload)
SELECT TOP (200) DATEADD(second, o.OrderNo, CAST(o.PlacedAt AS datetimeoffset(3))), N'seed', CONCAT(N'order ', o.CustomerID, N'/', o.OrderNo)
FROM sales.Orders AS o;
GO
PRINT 'caravan_sample ready';
GO
